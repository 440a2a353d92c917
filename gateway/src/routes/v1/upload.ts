import { createHash, type Hash } from 'node:crypto';
import type { Readable } from 'node:stream';
import busboy from 'busboy';
import type { Request } from 'express';
import { Errors, type ClientStream } from '@atelier/kit';
import type { trainer } from '@atelier/protos';
import { checkText } from '../../middleware/text';

export interface UploadLimits {
  maxFileBytes: number;
  maxFiles: number;
  maxTotalBytes: number;
}

/** What the upload's text fields make of the stream's first and last messages. */
export interface UploadFraming {
  /** Sent before the first photo (or at the end when there is none), with the fields seen so far. */
  header(fields: Record<string, string>): trainer.TrainVersionHeader;
  end(fields: Record<string, string>, files: number): trainer.TrainVersionEnd;
}

/**
 * What an upload's Idempotency-Key compares: sha256 over each file's bytes (in order, with its
 * field name) and the text fields. Not the raw body: its multipart boundary is random, so two
 * sends of the same photos differ there. File names are left out: the same photos renamed are
 * the same training.
 */
class UploadDigest {
  private readonly files: Array<{ field: string; hash: Hash }> = [];

  /** The next file's hash, fed its bytes as they come (busboy may announce a file before the last one ended). */
  file(field: string): Hash {
    const hash = createHash('sha256');
    this.files.push({ field, hash });
    return hash;
  }

  digest(fields: Record<string, string>): string {
    const sorted = Object.keys(fields)
      .sort()
      .map((name) => [name, fields[name]]);
    const files = this.files.map((f) => `${f.field}:${f.hash.digest('hex')}`);
    return createHash('sha256')
      .update(JSON.stringify({ files, fields: sorted }))
      .digest('hex');
  }
}

function multipartParser(req: Request, limits: UploadLimits): busboy.Busboy {
  const type = req.get('content-type') ?? '';
  if (!/^multipart\/form-data/i.test(type))
    throw Errors.unsupportedMediaType('send the photos as multipart/form-data in the field "images"');
  try {
    return busboy({
      headers: req.headers,
      // File names are UTF-8 in every browser's multipart; latin1 (the default) would hide bad bytes.
      defParamCharset: 'utf8',
      limits: {
        files: limits.maxFiles,
        fileSize: limits.maxFileBytes,
        fields: 10,
        fieldSize: 1024,
        parts: limits.maxFiles + 10,
      },
    });
  } catch (err) {
    throw Errors.invalid(`malformed multipart request: ${(err as Error).message}`);
  }
}

/** What a body's reader does with each photo it accepted, as it reads it. */
interface UploadSink {
  /** Before the photo's first bytes; `fields` are the text fields seen so far. */
  fileStart?(file: trainer.TrainingPhotoStart, fields: Record<string, string>): Promise<void>;
  /** A socket read of the photo. A returned promise holds the reading until it settles. */
  chunk?(bytes: Buffer): Promise<void> | undefined;
  /** After the photo's last bytes (not called once the upload has failed). */
  fileEnd?(): Promise<void>;
}

interface UploadRead {
  fields: Record<string, string>;
  files: number;
  digest: string;
}

/**
 * The one reader of a training upload's multipart body, for its first attempt (streamed to
 * trainer) and for a repeat of an answered Idempotency-Key (only hashed): the limits, the text
 * and field-name checks, the UploadDigest and the failure handling are the same for both, so a
 * repeat is refused exactly as a first attempt would be, and its digest is the first attempt's.
 */
class UploadReader {
  private readonly parser: busboy.Busboy;

  /** Throws (415, 400) when the request is not a multipart body. */
  constructor(
    private readonly req: Request,
    private readonly limits: UploadLimits,
  ) {
    this.parser = multipartParser(req, limits);
  }

  /**
   * Reads the body to its end, one photo after another through `sink`; rejects with the first
   * failure (the body's, the sink's, or `stop`'s reason).
   */
  async read(sink: UploadSink, stop?: AbortSignal): Promise<UploadRead> {
    const { req, limits, parser } = this;
    const digest = new UploadDigest();
    const fields: Record<string, string> = {};
    let total = 0;
    let index = 0;
    let failure: unknown;
    let chain: Promise<void> = Promise.resolve();
    const open = new Set<Readable>();
    let stopParsing: () => void = () => undefined;
    // The first failure wins. The rest of the body is drained unread, the file being read is
    // destroyed (its loop ends) and parsing stops, so the answer does not wait for the body's end.
    const fail = (err: unknown) => {
      failure ??= err;
      req.unpipe(parser);
      req.resume();
      for (const file of open) file.destroy();
      stopParsing();
    };
    const stopped = () => fail(stop?.reason);
    stop?.addEventListener('abort', stopped, { once: true });

    const done = new Promise<void>((resolve, reject) => {
      stopParsing = resolve;
      parser.on('field', (name, value) => {
        try {
          checkText(`form field name`, name, { replacementIsInvalid: true });
          checkText(`form.${name}`, value, { replacementIsInvalid: true });
        } catch (err) {
          return fail(err);
        }
        fields[name] = value;
      });
      parser.on('file', (name, file, info) => {
        if (name !== 'images') {
          file.resume();
          return fail(Errors.invalid(`unexpected file field "${name}"; photos go in "images"`));
        }
        try {
          checkText(`images[${index}].filename`, info.filename ?? '', { replacementIsInvalid: true });
        } catch (err) {
          file.resume();
          return fail(err);
        }
        const fileIndex = index++;
        open.add(file);
        file.on('close', () => open.delete(file));
        // busboy reports a body that ends inside a file on the file stream: unheard, that 'error'
        // would take the whole gateway down.
        file.on('error', (err: Error) => fail(Errors.invalid(`malformed multipart request: ${err.message}`)));
        file.on('limit', () =>
          fail(Errors.payloadTooLarge(`${info.filename} is larger than ${limits.maxFileBytes} bytes`)),
        );
        // One file after another: a sink sees each file's bytes between its fileStart and fileEnd,
        // and busboy announces the next file before this one's data has been read. The next file
        // waits (busboy holds it back) until this one is through.
        chain = chain
          .then(async () => {
            if (failure) return void file.resume();
            const hash = digest.file(name);
            await sink.fileStart?.(
              {
                index: fileIndex,
                filename: info.filename ?? `photo-${fileIndex}`,
                contentType: info.mimeType,
              },
              fields,
            );
            for await (const chunk of file as AsyncIterable<Buffer>) {
              if (failure) break;
              total += chunk.length;
              if (total > limits.maxTotalBytes) {
                fail(
                  Errors.payloadTooLarge(`the upload is larger than ${limits.maxTotalBytes} bytes in total`),
                );
                break;
              }
              hash.update(chunk);
              const written = sink.chunk?.(chunk);
              if (written) await written;
            }
            if (!failure) await sink.fileEnd?.();
            file.resume();
          })
          .catch((err: unknown) => {
            file.resume();
            fail(err);
          });
      });
      parser.on('filesLimit', () => fail(Errors.payloadTooLarge(`more than ${limits.maxFiles} files`)));
      parser.on('partsLimit', () => fail(Errors.payloadTooLarge('too many parts')));
      parser.on('error', (err: Error) =>
        reject(Errors.invalid(`malformed multipart request: ${err.message}`)),
      );
      parser.on('close', () => resolve());
      // The client may have gone before these listeners exist (the handler awaited Redis or RPCs
      // first). A request destroyed before its end was read never ends, even when all of its bytes
      // had arrived (req.complete): its unread data went with it.
      const gone = () => reject(Errors.invalid('the client closed the upload'));
      if (req.destroyed && !req.readableEnded) gone();
      req.on('close', () => {
        if (!req.readableEnded) gone();
      });
    });
    req.pipe(parser);
    try {
      await done;
      await chain;
    } catch (err) {
      fail(err);
    } finally {
      stop?.removeEventListener('abort', stopped);
    }
    // eslint-disable-next-line @typescript-eslint/only-throw-error -- the upload's own failure, passed on as caught (narrowed to {} by the check, not a new non-Error)
    if (failure) throw failure;
    return { fields, files: index, digest: digest.digest(fields) };
  }
}

/**
 * Reads a repeated upload (an Idempotency-Key already answered) into its UploadDigest, sending
 * nothing anywhere, so it can be compared with the first attempt's.
 */
export async function digestUpload(req: Request, limits: UploadLimits): Promise<string> {
  const { digest } = await new UploadReader(req, limits).read({});
  return digest;
}

/**
 * Adapts a multipart upload to trainer's TrainVersion stream, nothing more: each file is a
 * file_start followed by its chunks (socket reads gathered into messages of up to MESSAGE_BYTES),
 * written with backpressure, so the gateway holds at most a message or two of any photo. Trainer may answer before the end (a payment it refuses): the rest
 * of the body is then drained unread and that answer returned. The body's UploadDigest is
 * computed on the way through, for the Idempotency-Key.
 */
export async function streamUploadToTrainer(
  req: Request,
  stream: ClientStream<trainer.TrainVersionRequest, trainer.TrainVersionResponse>,
  framing: UploadFraming,
  limits: UploadLimits,
): Promise<{ response: trainer.TrainVersionResponse; digest: string }> {
  let reader: UploadReader;
  try {
    reader = new UploadReader(req, limits);
  } catch (err) {
    stream.cancel();
    throw err;
  }
  let headerSent: Promise<void> | undefined;
  const sendHeader = (fields: Record<string, string>) =>
    (headerSent ??= stream.write({ header: framing.header(fields) }));
  let message = new MessageGatherer();
  const toTrainer: UploadSink = {
    async fileStart(file, fields) {
      await sendHeader(fields);
      await stream.write({ fileStart: file });
      message = new MessageGatherer();
    },
    chunk(bytes) {
      const full = message.add(bytes);
      return full ? stream.write({ chunk: full }) : undefined;
    },
    async fileEnd() {
      const rest = message.flush();
      if (rest) await stream.write({ chunk: rest });
    },
  };

  // A refusal (402/404/409 for the payment) arrives while the photos are still coming.
  const refused = new AbortController();
  stream.response.catch((err: unknown) => refused.abort(err));

  let upload: UploadRead;
  try {
    upload = await reader.read(toTrainer, refused.signal);
  } catch (err) {
    // The trainer stream is closed without its end marker: trainer undoes what it did (the
    // payment given back) and answers, and only then does the client hear of the failure.
    await stream.end().catch(() => undefined);
    throw err;
  }
  try {
    await sendHeader(upload.fields);
    await stream.write({ end: framing.end(upload.fields, upload.files) });
    return { response: await stream.end(), digest: upload.digest };
  } catch (err) {
    stream.cancel();
    throw err;
  }
}

/**
 * Socket reads (16–64 KiB) gathered into messages of about this size before they go to trainer,
 * which relays them to imager: every gRPC message costs each of the three processes a frame,
 * a protobuf decode and encode and a Buffer, whatever its size.
 */
const MESSAGE_BYTES = 1 << 20;

class MessageGatherer {
  private parts: Buffer[] = [];
  private bytes = 0;

  /** A whole message once enough bytes are gathered. */
  add(chunk: Buffer): Buffer | undefined {
    this.parts.push(chunk);
    this.bytes += chunk.length;
    return this.bytes >= MESSAGE_BYTES ? this.flush() : undefined;
  }

  flush(): Buffer | undefined {
    if (this.bytes === 0) return undefined;
    const message = Buffer.concat(this.parts, this.bytes);
    this.parts = [];
    this.bytes = 0;
    return message;
  }
}
