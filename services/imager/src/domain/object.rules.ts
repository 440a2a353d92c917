import { Errors, requireUuid } from '@atelier/kit';

/**
 * The bucket's layout, in one place:
 *   datasets/<account_id>/<dataset_id>.zip   training photos (private: always presigned)
 *   outputs/<…>/<n>.<ext>                    generated images (public base URL when configured)
 * Nothing outside these two prefixes is ever written, deleted or signed.
 */
const DATASET_PREFIX = 'datasets/';
const OUTPUT_PREFIX = 'outputs/';

const MAX_KEY_LENGTH = 512;
const SEGMENT = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;
const DATASET_KEY = /^datasets\/[0-9a-f-]{36}\/[0-9a-f-]{36}\.zip$/;

export type KeyKind = 'dataset' | 'output';

export function datasetKey(accountId: string, datasetId: string): string {
  return `${DATASET_PREFIX}${requireUuid('account_id', accountId)}/${requireUuid('dataset_id', datasetId)}.zip`;
}

/** A key DeleteDataset may remove: exactly what PackTrainingImages writes. */
export function requireDatasetKey(key: string): string {
  if (!DATASET_KEY.test(key)) {
    throw Errors.invalid(
      `dataset_key must look like datasets/<account_id>/<dataset_id>.zip, got ${quote(key)}`,
    );
  }
  return key;
}

/** A TransferOutputs prefix: under outputs/, plain path segments, no trailing slash. */
export function requireOutputPrefix(prefix: string): string {
  if (!prefix.startsWith(OUTPUT_PREFIX) || !isPlainPath(prefix) || prefix.length > MAX_KEY_LENGTH - 16) {
    throw Errors.invalid(
      `key_prefix must be a path under ${OUTPUT_PREFIX} (letters, digits, . _ -), got ${quote(prefix)}`,
    );
  }
  return prefix;
}

/**
 * A DeleteOutputs prefix: `outputs/<account>/<…>` at least (never the whole of outputs/ or of an
 * account by accident of a short id), returned with a trailing slash so it names a folder.
 */
export function requireOutputParent(prefix: string): string {
  const trimmed = prefix.replace(/\/+$/, '');
  requireOutputPrefix(trimmed);
  if (trimmed.split('/').length < 3) {
    throw Errors.invalid(`key_prefix must name outputs/<account_id>/<…>, got ${quote(prefix)}`);
  }
  return `${trimmed}/`;
}

/** Which kind of object a key names; anything else is refused, so SignUrls is no general signer. */
export function signableKind(key: string): KeyKind {
  if (isPlainPath(key) && key.length <= MAX_KEY_LENGTH) {
    if (key.startsWith(DATASET_PREFIX)) return 'dataset';
    if (key.startsWith(OUTPUT_PREFIX)) return 'output';
  }
  throw Errors.invalid(
    `only keys under ${DATASET_PREFIX} or ${OUTPUT_PREFIX} can be signed, got ${quote(key)}`,
  );
}

function isPlainPath(key: string): boolean {
  const segments = key.split('/');
  return segments.length >= 2 && segments.every((segment) => SEGMENT.test(segment) && segment !== '..');
}

function quote(value: string): string {
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
}
