export * from './ports';
export { DecodeBudget } from './decode-budget.service';
export { readImageHeader, sniffImageType, type ImageType } from './image.rules';
export { decodeCost, DEFAULT_PHOTO_LIMITS, type NormalisedPhoto, type PhotoLimits } from './photo.rules';
/** @public bench/lib/normalise-only.mjs loads it from dist/ (knip does not follow that require). */
export { DEFAULT_CHECK_CONCURRENCY } from './photo.service';
export {
  checkPhotos,
  inspectPhoto,
  type CheckPhotosOptions,
  type IncomingPhoto,
  type InspectResult,
  type PhotoDeps,
} from './photo.service';
export { DatasetPacker, type PackPart } from './dataset.service';
export { OutputTransfer } from './output.service';
export { UrlSigner } from './url.service';
export * from './object.rules';
