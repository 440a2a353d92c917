export { sniffImageType, SNIFF_HEAD_BYTES, type ImageType } from './photo.sniff';
export {
  compareProblems,
  DEFAULT_PHOTO_LIMITS,
  formatBytes,
  PHOTO_PROBLEM_CODES,
  photoProblems,
  type NormalisedPhoto,
  type PhotoLimits,
  type PhotoProblem,
  type PhotoProblemCode,
  type PhotoRef,
} from './photo.rules';
export {
  inspectPhoto,
  JPEG_QUALITY,
  MAX_INPUT_PIXELS,
  sha256Hex,
  type IncomingPhoto,
  type InspectResult,
} from './photo.inspect';
export {
  checkPhotos,
  DEFAULT_CHECK_CONCURRENCY,
  type CheckPhotosOptions,
  type PhotoCheckResult,
} from './photo.batch';
export { decodeHeic, HEIC_WORKER_IDLE_MS, type DecodedHeic } from './heic.decode';
export { createStoredZip, dosDateTime, ZIP_MAX_BYTES, ZIP_MAX_ENTRIES, type StoredZip } from './zip.stored';
export { crc32 } from './zip.crc32';
