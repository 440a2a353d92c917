import { Errors } from '@atelier/kit';
import { signableKind } from './object.rules';
import type { ObjectStore, SignedUrl } from './ports';

export interface UrlPolicy {
  /** Lifetime of a dataset URL; must outlive the longest training. */
  datasetTtlS: number;
  /** Lifetime of a presigned image URL (when no public base URL is configured). */
  imageTtlS: number;
  maxKeys: number;
}

/**
 * How objects are handed out. Generated images: `PUBLIC_ASSET_BASE_URL + key` when a public
 * bucket or CDN is configured, otherwise presigned GETs. Datasets hold customers' photos and are
 * always presigned, even when a public base exists. Signing is local: no bucket request is made
 * and no existence check either.
 */
export class UrlSigner {
  constructor(
    private readonly bucket: ObjectStore,
    private readonly policy: UrlPolicy,
  ) {}

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
        return this.bucket.publicUrl(key) ?? (await this.bucket.presignGet(key, this.policy.imageTtlS)).url;
      }),
    );
  }
}
