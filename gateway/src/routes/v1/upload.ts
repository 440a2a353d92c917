import type { Readable } from 'node:stream';
import busboy from 'busboy';
import type { Request } from 'express';
import { Errors, type ClientStream } from '@atelier/kit';
import type { imager } from '@atelier/protos';
import { checkText } from '../../middleware/text';

export interface UploadLimits {
  maxFileBytes: number;
  maxFiles: number;
  maxTotalBytes: number;
}

/**
 * Streams a multipart upload straight into the imager's PackTrainingImages stream: each file
 * is a file_start followed by its chunks, written with backpressure, so the gateway holds at
 * most a chunk or two of any photo. Text fields are collected and returned.
 */
export async function streamUploadToImager(
  req: Request,
  stream: ClientStream<imager.PackTrainingImagesRequest, imager.PackTrainingImagesResponse>,
  header: imager.PackHeader,
  limits: UploadLimits,
): Promise<{ fields: Record<string, string>; response: imager.PackTrainingImagesResponse }> {
  const type = req.get('content-type') ?? '';
  if (!/^multipart\/form-data/i.test(type)) {
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
    throw Errors.invalid(`malformed multipart request: ${(err as Error).message}`);
  }
  const fields: Record<string, string> = {};
  let total = 0;
  let index = 0;
  let failure: unknown;
  let chain: Promise<void> = stream.write({ header });
  const open = new Set<Readable>();
  let stopParsing: () => void = () => undefined;
  // The first failure wins. The rest of the body is drained unread, the file being written is
  // destroyed (its loop ends) and parsing stops, so the answer does not wait for the body's end.
  const fail = (err: unknown) => {
    failure ??= err;
    req.unpipe(parser);
    req.resume();
    for (const file of open) file.destroy();
    stream.cancel();
    stopParsing();
  };

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
  if (failure) throw failure;
  await stream.write({ end: { files: index } });
  return { fields, response: await stream.end() };
}
