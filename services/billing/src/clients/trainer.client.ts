import { createGrpcClient, type Metrics } from '@atelier/kit';
import { trainer } from '@atelier/protos';
import type { AccountDataDeletion } from '../domain/account.service';

/**
 * Billing hands an account's deletion to trainer, which deletes its versions as a durable job and
 * calls billing's EraseAccount at the end. Errors arrive as AppError, so the domain never sees gRPC.
 */
export function createTrainerDeletion(address: string, opts: { timeoutMs: number; metrics?: Metrics }) {
  const client = createGrpcClient(trainer.TrainerServiceService, address, opts);
  const deletion: AccountDataDeletion & { close(): void } = {
    async deleteAccountData(accountId) {
      return { versions: (await client.deleteAccountData({ accountId })).versions };
    },
    close: () => client.close(),
  };
  return deletion;
}
