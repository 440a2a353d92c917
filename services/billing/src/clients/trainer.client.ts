import { createGrpcClient, type Metrics } from '@atelier/kit';
import { trainer } from '@atelier/protos';
import type { AccountDataDeletion } from '../domain/account.service';
import type { VersionDirectory } from '../domain/payment.service';

/**
 * Billing asks trainer whether a version is the caller's and ready (add-on payments). Errors
 * arrive as AppError (NOT_FOUND stays a 404), so the domain never sees gRPC.
 */
export function createTrainerVersions(address: string, opts: { timeoutMs: number; metrics?: Metrics }) {
  const client = createGrpcClient(trainer.TrainerServiceService, address, opts);
  const versions: VersionDirectory & AccountDataDeletion & { close(): void } = {
    async getVersion(accountId, versionId) {
      const { version } = await client.getVersion({ accountId, versionId });
      return version
        ? { versionId: version.versionId, accountId: version.accountId, isReady: version.isReady }
        : undefined;
    },
    async deleteAccountData(accountId) {
      return { versions: (await client.deleteAccountData({ accountId })).versions };
    },
    close: () => client.close(),
  };
  return versions;
}
