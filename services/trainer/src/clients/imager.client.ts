import { createGrpcClient, type Metrics } from '@atelier/kit';
import { imager } from '@atelier/protos';
import type { DatasetPort, ObjectsPort } from '../domain/ports';

/**
 * Trainer's one client of imager (one channel): PackTrainingImages as the domain's DatasetPort,
 * and deleting a version's objects (ObjectsPort). Calls take `timeoutMs` unless they say
 * otherwise. Packing runs inside TrainVersion and carries its caller's deadline (the upload's);
 * `packTimeoutMs` only caps it. Errors arrive as AppError.
 */
export function createImagerClient(
  address: string,
  opts: { timeoutMs: number; packTimeoutMs: number; metrics?: Metrics },
): DatasetPort & ObjectsPort & { close(): void } {
  const client = createGrpcClient(imager.ImagerServiceService, address, {
    timeoutMs: opts.timeoutMs,
    metrics: opts.metrics,
  });
  return {
    open(header) {
      const stream = client.packTrainingImages({ timeoutMs: opts.packTimeoutMs });
      const opened = stream.write({ header });
      return {
        async write(part) {
          await opened;
          await stream.write(
            'chunk' in part
              ? { chunk: Buffer.from(part.chunk.buffer, part.chunk.byteOffset, part.chunk.byteLength) }
              : part,
          );
        },
        async finish() {
          await opened;
          const r = await stream.end();
          if (r.problems.length) return { ok: false, problems: r.problems };
          return { ok: true, datasetKey: r.datasetKey, datasetUrl: r.datasetUrl, images: r.images };
        },
        cancel: () => stream.cancel(),
      };
    },
    async deleteDataset(datasetKey, call) {
      await client.deleteDataset({ datasetKey }, call);
    },
    async deleteOutputs(keyPrefix) {
      return (await client.deleteOutputs({ keyPrefix })).deleted;
    },
    close: () => client.close(),
  };
}
