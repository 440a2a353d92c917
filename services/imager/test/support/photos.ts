import { SharpPhotoCodec } from '../../src/clients/image.client';
import {
  DecodeBudget,
  DEFAULT_PHOTO_LIMITS,
  inspectPhoto,
  type IncomingPhoto,
  type InspectResult,
  type PhotoDeps,
  type PhotoLimits,
} from '../../src/domain';

/** The production codec with the production default budget (512 MiB). */
export const photoDeps: PhotoDeps = {
  codec: new SharpPhotoCodec(),
  budget: new DecodeBudget(512 * 1024 * 1024),
};

/** `inspectPhoto` as the packer wires it. */
export function inspect(
  photo: IncomingPhoto & { sha256?: string },
  limits: PhotoLimits = DEFAULT_PHOTO_LIMITS,
): Promise<InspectResult> {
  return inspectPhoto(photo, limits, photoDeps);
}
