import { createGrpcClient, type Metrics } from '@atelier/kit';
import { imager } from '@atelier/protos';
import type { OutputStore } from '../domain/ports';

/** imager's TransferOutputs as the domain's OutputStore; copying gets its own, longer deadline. */
export function createImagerOutputs(
  address: string,
  opts: { timeoutMs: number; transferTimeoutMs: number; metrics?: Metrics },
) {
  const client = createGrpcClient(imager.ImagerServiceService, address, {
    timeoutMs: opts.timeoutMs,
    metrics: opts.metrics,
  });
  const outputs: OutputStore & { close(): void } = {
    async transfer(keyPrefix, urls) {
      const { images } = await client.transferOutputs(
        { keyPrefix, urls },
        { timeoutMs: opts.transferTimeoutMs },
      );
      return images.map((i) => ({
        key: i.key,
        width: i.width,
        height: i.height,
        contentType: i.contentType,
        bytes: i.bytes,
      }));
    },
    async signUrls(keys) {
      return keys.length ? (await client.signUrls({ keys })).urls : [];
    },
    async deleteAll(keyPrefix) {
      return (await client.deleteOutputs({ keyPrefix }, { timeoutMs: opts.transferTimeoutMs })).deleted;
    },
    close: () => client.close(),
  };
  return outputs;
}
