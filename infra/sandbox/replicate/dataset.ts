/**
 * What a DreamBooth/LoRA trainer does first: download the zip of photos it was given and refuse to
 * train on anything that is not a zip of images. The URL is usually a presigned S3 GET on the
 * local bucket, so this exercises the real upload path end to end.
 */
import JSZip from 'jszip';
import { errorMessage, fetchWithin } from './async';
import type { TrainingDataset } from './types';

const ZIP_MAGIC = Buffer.from([0x50, 0x4b, 0x03, 0x04]);
const IMAGE_NAME = /\.(jpe?g|png|webp)$/i;
const MAX_BYTES = 512 * 1024 * 1024;

/** A failure whose message is the run's `error`, as the trainer would print it. */
export class RunFailure extends Error {}

export async function downloadDataset(key: string, url: string, stop: AbortSignal): Promise<TrainingDataset> {
  let res: Response;
  try {
    res = await fetchWithin(url, { method: 'GET' }, 60_000, stop);
  } catch (err) {
    if (stop.aborted) throw err;
    throw new RunFailure(`Failed to download ${key} from ${url}: ${errorMessage(err)}`);
  }
  if (!res.ok)
    throw new RunFailure(
      `Failed to download ${key} from ${url}: HTTP ${res.status} ${res.statusText}`.trim(),
    );
  const body = Buffer.from(await res.arrayBuffer());
  if (body.length > MAX_BYTES) throw new RunFailure(`${key} is too large (${body.length} bytes)`);
  if (body.length < 4 || !body.subarray(0, 4).equals(ZIP_MAGIC)) {
    throw new RunFailure(`${key} must be a zip file (got ${body.length} bytes that are not a zip archive)`);
  }
  let entries: string[];
  try {
    const zip = await JSZip.loadAsync(body);
    entries = Object.values(zip.files)
      .filter((f) => !f.dir)
      .map((f) => f.name);
  } catch (err) {
    throw new RunFailure(`${key} is not a readable zip archive: ${errorMessage(err)}`);
  }
  if (!entries.some((name) => IMAGE_NAME.test(name))) {
    throw new RunFailure(`No images found in ${key} (expected .jpg, .jpeg, .png or .webp files)`);
  }
  return { url, bytes: body.length, entries };
}
