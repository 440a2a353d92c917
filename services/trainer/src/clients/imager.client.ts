import { createGrpcClient, type Metrics } from '@atelier/kit';
import { imager } from '@atelier/protos';
import type { ObjectsPort } from '../domain/ports';

/** Trainer's calls to imager: deleting a version's objects. Errors arrive as AppError. */
export function createImagerClient(
  address: string,
  opts: { timeoutMs: number; metrics?: Metrics },
): ObjectsPort & { close(): void } {
  const client = createGrpcClient(imager.ImagerServiceService, address, opts);
  return {
    async deleteDataset(datasetKey) {
      await client.deleteDataset({ datasetKey });
    },
    async deleteOutputs(keyPrefix) {
      return (await client.deleteOutputs({ keyPrefix })).deleted;
    },
    close: () => client.close(),
  };
}
