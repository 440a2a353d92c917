import type { AsyncService } from '@atelier/kit';
import type { trainer } from '@atelier/protos';

/** Methods not listed here answer UNIMPLEMENTED (the kit's default), never a fake success. */
export function trainerHandlers(): AsyncService<typeof trainer.TrainerServiceService> {
  return {};
}
