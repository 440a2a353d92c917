import type { Readable } from 'node:stream';
import type { ImageType } from './image.rules';

/**
 * What imager's use cases need from outside: the bucket, an image codec and a zip writer. The
 * adapters in src/clients/ implement these (S3, sharp/libvips with libheif for HEIC, a stored-zip
 * stream); errors from the bucket arrive as AppError.
 */

export interface SignedUrl {
  url: string;
  expiresAt: Date;
}

export interface UploadOptions {
  contentType: string;
  /** Parts uploaded at once (each part is held in memory). */
  queueSize?: number;
  /** The body's exact length when known: then it is sent as one streamed PUT. */
  contentLength?: number;
}

export interface ObjectStore {
  /** Streams `body` into `key`; nothing exists at `key` unless the stream ended and was stored. */
  upload(key: string, body: Readable, options: UploadOptions): Promise<void>;
  /** Best effort: for cleanup after another failure, which is the one to report. */
  deleteQuietly(key: string): Promise<void>;
  /** Deletes every object (and every stored version of it) under `prefix`, or exactly `prefix`
   * with `exact`; answers how many were removed. For deletion requests: retried until done. */
  purge(prefix: string, opts?: { exact?: boolean }): Promise<number>;
  /** A GET URL valid `ttlSeconds` from `signedAt` (default now); signing is local. */
  presignGet(key: string, ttlSeconds: number, signedAt?: Date): Promise<SignedUrl>;
  /** The key's public URL when a public base is configured. */
  publicUrl(key: string): string | undefined;
}

/** What a photo's headers say, read without decoding its pixels. */
export interface PhotoHeader {
  /** The stored pixel grid of the image that will be decoded (HEIC: the primary image). */
  readonly width: number;
  readonly height: number;
  /** EXIF orientation, 1 (upright) when absent. */
  readonly orientation: number;
  readonly channels: number;
  /** libvips' interpretation, e.g. 'srgb', 'b-w', 'cmyk'. */
  readonly space: string;
  /** 'none', 'srgb' (an embedded profile that describes sRGB) or 'other' (Display P3, Adobe RGB…). */
  readonly profile: 'none' | 'srgb' | 'other';
  /** Progressive or arithmetic coding, CMYK… — anything but a plain baseline/progressive JPEG
   * that every trainer's decoder reads is re-encoded. */
  readonly plainJpeg: boolean;
}

export interface EncodedPhoto {
  readonly jpeg: Buffer;
  readonly width: number;
  readonly height: number;
}

/** Decoding failed: the message is the decoder's own (the domain words it for the customer). */
export class DecodeError extends Error {}

export interface PhotoCodec {
  /** Headers only; throws DecodeError when they cannot be read. */
  readHeader(bytes: Buffer): Promise<PhotoHeader>;
  /** Decodes (never more than `maxPixels`), orients, scales to fit `maxSide`, flattens onto white,
   * converts to sRGB and encodes a JPEG without metadata. Throws DecodeError. */
  normalise(
    bytes: Buffer,
    type: ImageType,
    header: PhotoHeader,
    options: { maxSide: number; maxPixels: number },
  ): Promise<EncodedPhoto>;
  /** The same JPEG without its metadata segments, its pixels untouched; verified to decode.
   * Throws DecodeError. */
  stripJpeg(bytes: Buffer, header: PhotoHeader): Promise<EncodedPhoto>;
}

/** A zip written as a stream; `addFile` resolves when the consumer made room for more. */
export interface ZipWriter {
  readonly stream: Readable;
  addFile(name: string, data: Buffer): Promise<void>;
  /** Writes the central directory and ends the stream. */
  finish(): Promise<void>;
}
