import { Worker } from 'node:worker_threads';

/** Upright RGBA pixels of a HEIC/HEIF file's primary image. */
export interface DecodedHeic {
  readonly width: number;
  readonly height: number;
  /** width × height × 4 bytes, RGBA. */
  readonly rgba: Buffer;
}

/** The decode is refused before any pixel is allocated past `maxPixels`, and when the primary
 * image is not the size the headers were checked at. */
export interface HeicLimits {
  readonly maxPixels: number;
  readonly expected?: { readonly width: number; readonly height: number };
}

interface DecodeRequest {
  bytes: Buffer;
  maxPixels: number;
  width: number | undefined;
  height: number | undefined;
}

/** A worker whose heap held up to this many pixels is kept for the next decode (~12 MP phones). */
const KEEP_WORKER_MAX_PIXELS = 13_000_000;

type WorkerReply =
  { ok: true; width: number; height: number; data: Uint8ClampedArray } | { ok: false; message: string };

/**
 * Plain JavaScript, so it runs the same from ts sources under jest and from dist. libheif logs
 * failures with console.log; inside the worker those lines join the error instead of reaching
 * the service's JSON log stream.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
let said = [];
const text = (arg) => (typeof arg === 'string' ? arg : arg && typeof arg.message === 'string' ? arg.message.trim() : '');
console.log = console.warn = console.error = (...args) => said.push(args.map(text).filter(Boolean).join(' '));
const libheif = require(workerData.libheifPath);
function display(image, width, height) {
  return new Promise((resolve, reject) =>
    image.display({ data: new Uint8ClampedArray(width * height * 4), width, height }, (shown) =>
      shown ? resolve(shown.data) : reject(new Error('HEIF processing error')),
    ),
  );
}
async function decode({ bytes, maxPixels, width: expectedWidth, height: expectedHeight }) {
  await libheif.ready;
  const decoder = new libheif.HeifDecoder();
  let images = [];
  try {
    images = decoder.decode(bytes);
    const primary = images.find((image) => libheif.heif_image_handle_is_primary_image(image.handle));
    if (!primary) throw new Error('HEIF file without a primary image');
    const width = primary.get_width();
    const height = primary.get_height();
    if (width * height > maxPixels) throw new Error('the image is larger than the pixel limit');
    if (expectedWidth && (width !== expectedWidth || height !== expectedHeight)) {
      throw new Error('the primary image is ' + width + 'x' + height + ', its header said ' + expectedWidth + 'x' + expectedHeight);
    }
    return { width, height, data: await display(primary, width, height) };
  } finally {
    for (const image of images) image.free();
    if (decoder.decoder) libheif.heif_context_free(decoder.decoder);
  }
}
parentPort.on('message', (request) => {
  said = [];
  decode(request).then(
    ({ width, height, data }) => parentPort.postMessage({ ok: true, width, height, data }, [data.buffer]),
    (error) => parentPort.postMessage({ ok: false, message: [String(error && error.message), ...said].join('; ') }),
  );
});
`;

/** A worker costs ~0.5 s to start (mostly compiling libheif), more than a third of a 12 MP
 * decode, so one outlives its decode for a while; an idle one is ended to give back its
 * WebAssembly heap, which never shrinks. */
const HEIC_WORKER_IDLE_MS = 15_000;

interface Slot {
  readonly worker: Worker;
  idleTimer?: NodeJS.Timeout;
}

const idle: Slot[] = [];
let libheifPath: string | undefined;

/**
 * sharp's prebuilt libvips has no HEVC decoder, so HEIC goes through libheif compiled to
 * WebAssembly. heic-convert would re-encode the pixels as JPEG with a pure-JS encoder (twice as
 * slow, and a second lossy generation before our own JPEG), so the raw pixels come from
 * libheif-js directly (heic-decode, which heic-convert uses, decodes the first top-level image,
 * which need not be the primary one that the headers were checked at).
 *
 * The WebAssembly decoder is synchronous and takes 1–2 s for a 12 MP photo: on the main thread
 * it would stall every RPC and health check of the service, so it runs in worker threads, one
 * per concurrent decode (the callers' concurrency bounds how many).
 *
 * libheif applies the HEIF transforms (irot/imir/clap), so the pixels are already upright and
 * EXIF orientation must not be applied again.
 */
export async function decodeHeic(bytes: Buffer, limits: HeicLimits): Promise<DecodedHeic> {
  const slot = idle.pop() ?? spawn();
  clearTimeout(slot.idleTimer);
  slot.worker.ref();
  let reply: WorkerReply;
  try {
    reply = await ask(slot.worker, {
      bytes,
      maxPixels: limits.maxPixels,
      width: limits.expected?.width,
      height: limits.expected?.height,
    });
  } catch (error) {
    void slot.worker.terminate();
    throw error;
  }
  if (!reply.ok) {
    // A failed decode may leave libheif's state behind: start afresh next time.
    void slot.worker.terminate();
    throw new Error(reply.message);
  }
  const { width, height, data } = reply;
  // The WebAssembly heap grows to the largest image decoded and never shrinks: a worker that
  // decoded a large one is not kept, so its memory goes back as soon as the decode is done.
  if (width * height > KEEP_WORKER_MAX_PIXELS) void slot.worker.terminate();
  else park(slot);
  if (!width || !height || data.length !== width * height * 4) {
    throw new Error(`decoder returned ${data.length} bytes for ${width}×${height}`);
  }
  return { width, height, rgba: Buffer.from(data.buffer, data.byteOffset, data.byteLength) };
}

function spawn(): Slot {
  libheifPath ??= require.resolve('libheif-js/wasm-bundle');
  const slot: Slot = { worker: new Worker(WORKER_SOURCE, { eval: true, workerData: { libheifPath } }) };
  // A decode in progress hears of a crash through ask(); these keep an idle worker's crash
  // from being an unhandled 'error' event and drop it from the idle list.
  slot.worker.on('error', () => undefined);
  slot.worker.on('exit', () => forget(slot));
  return slot;
}

function ask(worker: Worker, request: DecodeRequest): Promise<WorkerReply> {
  return new Promise<WorkerReply>((resolve, reject) => {
    const onMessage = (reply: WorkerReply): void => done(() => resolve(reply));
    const onError = (error: Error): void => done(() => reject(error));
    const onExit = (code: number): void =>
      done(() => reject(new Error(`HEIC decoder exited with code ${code}`)));
    const done = (outcome: () => void): void => {
      worker.off('message', onMessage).off('error', onError).off('exit', onExit);
      outcome();
    };
    worker.on('message', onMessage).on('error', onError).on('exit', onExit);
    worker.postMessage(request);
  });
}

/** An idle worker must not keep the process alive, nor live forever. */
function park(slot: Slot): void {
  slot.worker.unref();
  slot.idleTimer = setTimeout(() => void slot.worker.terminate(), HEIC_WORKER_IDLE_MS).unref();
  idle.push(slot);
}

function forget(slot: Slot): void {
  clearTimeout(slot.idleTimer);
  const at = idle.indexOf(slot);
  if (at >= 0) idle.splice(at, 1);
}
