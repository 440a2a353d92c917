import { createGrpcClient, type Metrics } from '@atelier/kit';
import { inferencer } from '@atelier/protos';
import type { PromptsPort } from '../domain/ports';

/** Trainer's call to inferencer: a deleted version's prompts. Errors arrive as AppError. */
export function createInferencerClient(
  address: string,
  opts: { timeoutMs: number; metrics?: Metrics },
): PromptsPort & { close(): void } {
  const client = createGrpcClient(inferencer.InferencerServiceService, address, opts);
  return {
    async eraseVersionPrompts(accountId, versionId) {
      return (await client.eraseVersionPrompts({ accountId, versionId })).erased;
    },
    close: () => client.close(),
  };
}
