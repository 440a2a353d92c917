import { randomUUID } from 'node:crypto';
import { Errors, requireUuid } from '@atelier/kit';
import type { VersionRow } from '../repositories';
import type { DatasetPort, PhotoPart, PhotoProblem } from './ports';
import { newProgress, type VersionService } from './version.service';
import { checkLabels, DEFAULT_TRIGGER_WORD } from './version.rules';

/** Labels are optional in both places: the header's when known early, the end's win. */
interface Labels {
  className?: string | undefined;
  triggerWord?: string | undefined;
  callbackUrl?: string | undefined;
}

/** One message of the TrainVersion stream (the generated proto type fits this shape). */
export interface TrainPart {
  header?:
    ({ accountId: string; paymentId: string; versionId: string; maxRunning?: number } & Labels) | undefined;
  fileStart?: { index: number; filename: string; contentType: string } | undefined;
  chunk?: Uint8Array | undefined;
  end?: ({ files: number } & Labels) | undefined;
}

export type TrainResult =
  { ok: false; problems: PhotoProblem[] } | { ok: true; version: VersionRow; images: number };

/**
 * TrainVersion: the whole training upload as one use case. The header's labels and callback URL
 * are checked, then the payment is claimed (so an unpaid, used or foreign payment is refused
 * before a photo is read, and the claim answers the plan's photo limits as bought), the photos
 * stream through to imager with backpressure, and the training is started on the stored dataset.
 * Whatever fails after the claim — rejected photos, bad labels or callback URL sent after the
 * photos, the bucket, Replicate, a client that went away — is undone in one place
 * (VersionService.compensate): the payment is given back and the dataset deleted.
 */
export class TrainingService {
  constructor(
    private readonly d: {
      versions: VersionService;
      datasets: DatasetPort;
    },
  ) {}

  async train(parts: AsyncIterable<TrainPart>, signal: AbortSignal): Promise<TrainResult> {
    const stream = parts[Symbol.asyncIterator]();
    const first = await stream.next();
    const header = first.done ? undefined : first.value.header;
    if (!header) throw Errors.invalid('the stream must start with a header');
    const accountId = requireUuid('account_id', header.accountId);
    const paymentId = requireUuid('payment_id', header.paymentId);
    const versionId = header.versionId ? requireUuid('version_id', header.versionId) : randomUUID();
    // Labels and a callback URL known before the photos are checked before anything is claimed or read.
    if (header.className !== undefined || header.triggerWord !== undefined) labelsOf(header, {});
    this.d.versions.callbackUrl(header.callbackUrl);

    // A retry (same Idempotency-Key, so the same version id) of an upload whose first attempt
    // started the training: its version is the answer, and its photos are not read again.
    const started = await this.d.versions.startedWith(accountId, paymentId, versionId);
    if (started) {
      for (let next = await stream.next(); !next.done && !next.value.end; next = await stream.next());
      return { ok: true, version: started, images: started.image_count };
    }

    await this.d.versions.refuseAtCap(accountId, header.maxRunning);
    const progress = newProgress(accountId, paymentId, versionId);
    const plan = await this.d.versions.claim(progress);
    const upload = this.d.datasets.open({
      accountId,
      datasetId: versionId,
      minImages: plan.minImages,
      maxImages: plan.maxImages,
    });
    try {
      let end: TrainPart['end'];
      for (let next = await stream.next(); !next.done; next = await stream.next()) {
        if (signal.aborted) break;
        const part = photoPart(next.value);
        if ('end' in part) {
          end = next.value.end;
          break;
        }
        await upload.write(part);
      }
      // grpc-js ends a cancelled caller's stream like a finished one: only the marker is "done".
      if (!end || signal.aborted) throw Errors.timedOut('the client went away before sending every photo');
      await upload.write({ end: { files: end.files } });
      const packed = await upload.finish();
      if (!packed.ok) {
        await this.d.versions.compensate(progress, new Error(`${packed.problems.length} photo problem(s)`));
        return { ok: false, problems: packed.problems };
      }
      progress.datasetKey = packed.datasetKey;
      const labels = labelsOf(header, end);
      const callbackUrl = this.d.versions.callbackUrl(end.callbackUrl ?? header.callbackUrl);
      const version = await this.d.versions.launch(
        progress,
        {
          datasetKey: packed.datasetKey,
          datasetUrl: packed.datasetUrl,
          imageCount: packed.images,
          ...labels,
          callbackUrl,
          maxRunning: header.maxRunning,
        },
        signal,
      );
      return { ok: true, version, images: packed.images };
    } catch (err) {
      upload.cancel();
      await this.d.versions.compensate(progress, err);
      throw err;
    }
  }
}

function photoPart(part: TrainPart): PhotoPart | { end: true } {
  if (part.fileStart) return { fileStart: part.fileStart };
  if (part.chunk) return { chunk: part.chunk };
  if (part.end) return { end: true };
  throw Errors.invalid('after the header come photos (file_start, chunk) and end; a second header is not');
}

/** The end's labels win over the header's; trigger_word defaults to the trainers' own token. */
function labelsOf(header: Labels, end: Labels): { className: string; triggerWord: string } {
  const checked = checkLabels(
    end.className ?? header.className ?? '',
    end.triggerWord ?? header.triggerWord ?? DEFAULT_TRIGGER_WORD,
  );
  if (!checked.ok) throw Errors.invalid(checked.problems.join('; '), { errors: checked.problems });
  return { className: checked.className, triggerWord: checked.triggerWord };
}
