import type { AsyncService } from '@atelier/kit';
import type { inferencer } from '@atelier/protos';

/** Methods not listed here answer UNIMPLEMENTED (the kit's default), never a fake success. */
export function inferencerHandlers(): AsyncService<typeof inferencer.InferencerServiceService> {
  return {};
}
