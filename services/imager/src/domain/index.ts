export * from './ports';
export { DecodeBudget } from './decode-budget.service';
export {
  OUTPUT_CONTENT_TYPES,
  OUTPUT_EXTENSIONS,
  readImageHeader,
  sniffImageType,
  SNIFF_HEAD_BYTES,
  type ImageHeader,
  type ImageType,
  type OutputImageType,
} from './image.rules';
export {
  canPassThrough,
  compareProblems,
  decodeCost,
  DEFAULT_PHOTO_LIMITS,
  formatBytes,
  jpegShrinkOnLoad,
  PHOTO_PROBLEM_CODES,
  photoProblems,
  uprightSize,
  type NormalisedPhoto,
  type PhotoLimits,
  type PhotoProblem,
  type PhotoProblemCode,
  type PhotoRef,
} from './photo.rules';
export {
  checkPhotos,
  DEFAULT_CHECK_CONCURRENCY,
  inspectPhoto,
  sha256Hex,
  type CheckPhotosOptions,
  type IncomingPhoto,
  type InspectResult,
  type PhotoCheckResult,
  type PhotoDeps,
} from './photo.service';
export {
  DatasetPacker,
  type PackDeps,
  type PackLimits,
  type PackPart,
  type PackResult,
} from './dataset.service';
export { OutputTransfer, type StoredOutput, type TransferDeps, type TransferOptions } from './output.service';
export { UrlSigner, type UrlPolicy } from './url.service';
export * from './object.rules';
