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
 * Adapts a multipart upload to trainer's TrainVersion stream, nothing more: each file is a
 * file_start followed by its chunks, written with backpressure, so the gateway holds at most a
 * chunk or two of any photo. Trainer may answer before the end (a payment it refuses): the rest
 * of the body is then drained unread and that answer returned.
 */
export async function streamUploadToTrainer(
  req: Request,
  stream: ClientStream<trainer.TrainVersionRequest, trainer.TrainVersionResponse>,
  framing: UploadFraming,
  limits: UploadLimits,
): Promise<trainer.TrainVersionResponse> {
  const type = req.get('content-type') ?? '';
  if (!/^multipart\/form-data/i.test(type)) {
    stream.cancel();
    throw Errors.unsupportedMediaType('send the photos as multipart/form-data in the field "images"');
  }
  let parser: busboy.Busboy;
  try {
    parser = busboy({
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
    stream.cancel();
    throw Errors.invalid(`malformed multipart request: ${(err as Error).message}`);
  }
  const fields: Record<string, string> = {};
  let total = 0;
  let index = 0;
  let failure: unknown;
  let headerSent: Promise<void> | undefined;
  const sendHeader = () => (headerSent ??= stream.write({ header: framing.header(fields) }));
  let chain: Promise<void> = Promise.resolve();
  const open = new Set<Readable>();
  let stopParsing: () => void = () => undefined;
  // The first failure wins. The rest of the body is drained unread, the file being written is
  // destroyed (its loop ends) and parsing stops, so the answer does not wait for the body's end.
  // The trainer stream is then closed without its end marker: trainer undoes what it did (the
  // payment given back) and answers, and only then does the client hear of the failure.
  const fail = (err: unknown) => {
    failure ??= err;
    req.unpipe(parser);
    req.resume();
    for (const file of open) file.destroy();
    stopParsing();
  };

  // A refusal (402/404/409 for the payment) arrives while the photos are still coming.
  stream.response.catch((err: unknown) => fail(err));

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
      // One file after another: every chunk must follow its own file_start, and busboy announces
      // the next file before this one's data has been read. The next file waits (busboy holds it
      // back) until this one is written.
      chain = chain
        .then(async () => {
          if (failure) return void file.resume();
          await sendHeader();
          await stream.write({
            fileStart: {
              index: fileIndex,
              filename: info.filename ?? `photo-${fileIndex}`,
              contentType: info.mimeType,
            },
          });
          for await (const chunk of file as AsyncIterable<Buffer>) {
            if (failure) break;
            total += chunk.length;
            if (total > limits.maxTotalBytes) {
              fail(
                Errors.payloadTooLarge(`the upload is larger than ${limits.maxTotalBytes} bytes in total`),
              );
              break;
            }
            await stream.write({ chunk });
          }
          file.resume();
        })
        .catch((err: unknown) => {
          file.resume();
          fail(err);
        });
    });
    parser.on('filesLimit', () => fail(Errors.payloadTooLarge(`more than ${limits.maxFiles} files`)));
    parser.on('partsLimit', () => fail(Errors.payloadTooLarge('too many parts')));
    parser.on('error', (err: Error) => reject(Errors.invalid(`malformed multipart request: ${err.message}`)));
    parser.on('close', () => resolve());
    // The client may have gone before these listeners exist (the handler awaited RPCs first).
    const gone = () => reject(Errors.invalid('the client closed the upload'));
    if (req.destroyed && !req.complete) gone();
    req.on('aborted', gone);
    req.on('close', () => {
      if (!req.complete) gone();
    });
  });
  req.pipe(parser);
  try {
    await done;
    await chain;
  } catch (err) {
    fail(err);
  }
  if (failure) {
    await stream.end().catch(() => undefined);
    throw failure;
  }
  try {
    await sendHeader();
    await stream.write({ end: framing.end(fields, index) });
    return await stream.end();
  } catch (err) {
    stream.cancel();
    throw err;
  }
}
