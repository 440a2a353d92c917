import type { AsyncService } from '@atelier/kit';
import type { imager } from '@atelier/protos';

/** Methods not listed here answer UNIMPLEMENTED (the kit's default), never a fake success. */
export function imagerHandlers(): AsyncService<typeof imager.ImagerServiceService> {
  return {};
}
