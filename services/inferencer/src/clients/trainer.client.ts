import { Errors, createGrpcClient, type Metrics } from '@atelier/kit';
import { trainer } from '@atelier/protos';
import type { VersionDirectory } from '../domain/ports';

/** trainer's GetVersion as the domain's VersionDirectory: NOT_FOUND stays a 404. */
export function createTrainerVersions(address: string, opts: { timeoutMs: number; metrics?: Metrics }) {
  const client = createGrpcClient(trainer.TrainerServiceService, address, opts);
  const versions: VersionDirectory & { close(): void } = {
    async getVersion(accountId, versionId) {
      const { version } = await client.getVersion({ accountId, versionId });
      if (!version) throw Errors.notFound('version', versionId);
      return {
        accountId: version.accountId,
        isReady: version.isReady,
        replicateVersion: version.replicateVersion,
        triggerWord: version.triggerWord,
        className: version.className,
      };
    },
    close: () => client.close(),
  };
  return versions;
}
