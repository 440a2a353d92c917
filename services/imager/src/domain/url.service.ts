import { Errors, systemClock, type Clock } from '@atelier/kit';
import { signableKind } from './object.rules';
import type { ObjectStore, SignedUrl } from './ports';

/** S3 presigned URLs cannot be valid for longer than 7 days (SigV4). */
export const MAX_PRESIGN_TTL_S = 7 * 24 * 3600;

/** How long one signed image URL is handed out again, at most (see UrlSigner). */
const REUSE_MAX_S = 300;
/** Image URLs kept for reuse, at most; past it the cache starts over (signing is cheap, memory is not). */
const REUSE_MAX_ENTRIES = 20_000;

export interface UrlPolicy {
  /** Lifetime of a dataset URL; must outlive the longest training. */
  datasetTtlS: number;
  /** Lifetime of a presigned image URL (when no public base URL is configured). */
  imageTtlS: number;
  maxKeys: number;
  /** The clock (tests move it). */
  clock?: Clock;
}

/**
 * How objects are handed out. Generated images: `PUBLIC_ASSET_BASE_URL + key` when a public
 * bucket or CDN is configured, otherwise presigned GETs. Datasets hold customers' photos and are
 * always presigned, even when a public base exists. Signing is local: no bucket request is made
 * and no existence check either.
 *
 * A presigned image URL costs ~0.7 ms of CPU and a listing page signs 80 of them, while clients
 * (the console among them) list the same page again and again. So image URLs are signed as of
 * the start of a short window (`reuse`, at most 5 minutes) for `imageTtlS + reuse`, and reused
 * within that window: every URL handed out is still valid for at least `imageTtlS`, and the same
 * image keeps the same URL for a while, which browsers can cache. Dataset URLs (customers' photos,
 * asked for once per training) are signed fresh.
 */
export class UrlSigner {
  private readonly reuseMs: number;
  private readonly clock: Clock;
  // Promises, so a key asked twice at once (one page, two requests) is signed once.
  private window = { start: 0, urls: new Map<string, Promise<string>>() };

  constructor(
    private readonly bucket: ObjectStore,
    private readonly policy: UrlPolicy,
  ) {
    const reuseS = Math.max(
      0,
      Math.min(REUSE_MAX_S, Math.floor(policy.imageTtlS / 4), MAX_PRESIGN_TTL_S - policy.imageTtlS),
    );
    this.reuseMs = reuseS * 1000;
    this.clock = policy.clock ?? systemClock;
  }

  async datasetUrl(key: string): Promise<SignedUrl> {
    return this.bucket.presignGet(key, this.policy.datasetTtlS);
  }

  /** URLs in the order of `keys`; one key outside datasets/ and outputs/ refuses the whole call. */
  async sign(keys: readonly string[]): Promise<string[]> {
    if (keys.length > this.policy.maxKeys) {
      throw Errors.invalid(`at most ${this.policy.maxKeys} keys per call, got ${keys.length}`);
    }
    const kinds = keys.map(signableKind);
    return Promise.all(
      keys.map(async (key, i) => {
        if (kinds[i] === 'dataset') return (await this.datasetUrl(key)).url;
        return this.bucket.publicUrl(key) ?? this.imageUrl(key);
      }),
    );
  }

  private imageUrl(key: string): Promise<string> {
    if (this.reuseMs === 0) return this.bucket.presignGet(key, this.policy.imageTtlS).then((s) => s.url);
    const now = this.clock.now().getTime();
    const start = now - (now % this.reuseMs);
    if (start !== this.window.start || this.window.urls.size >= REUSE_MAX_ENTRIES) {
      this.window = { start, urls: new Map() };
    }
    const urls = this.window.urls;
    let url = urls.get(key);
    if (url === undefined) {
      const ttlS = this.policy.imageTtlS + this.reuseMs / 1000;
      url = this.bucket.presignGet(key, ttlS, new Date(start)).then((signed) => signed.url);
      urls.set(key, url);
      void url.catch(() => urls.delete(key));
    }
    return url;
  }
}
