import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** Upright RGBA pixels of a HEIC/HEIF image's primary picture. */
export interface DecodedHeic {
  readonly width: number;
  readonly height: number;
  /** width × height × 4 bytes, RGBA. */
  readonly rgba: Buffer;
}

type WorkerReply =
  | { ok: true; width: number; height: number; data: Uint8ClampedArray }
  | { ok: false; message: string };

/**
 * Plain JavaScript, so it runs the same from ts sources under jest and from dist. libheif logs
 * failures with console.log; inside the worker those lines join the error instead of reaching
 * the service's JSON log stream.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const said = [];
console.log = console.warn = console.error = (...args) => said.push(args.map(String).join(' '));
const decode = require(workerData.heicDecodePath);
decode({ buffer: workerData.bytes }).then(
  ({ width, height, data }) => parentPort.postMessage({ ok: true, width, height, data }, [data.buffer]),
  (error) => parentPort.postMessage({ ok: false, message: [String(error && error.message), ...said].join('; ') }),
);
`;

let heicDecodePath: string | undefined;

/**
 * sharp's prebuilt libvips has no HEVC decoder, so HEIC goes through libheif compiled to
 * WebAssembly. heic-convert would re-encode the pixels as JPEG with a pure-JS encoder (twice as
 * slow, and a second lossy generation before our own JPEG), so the raw pixels come from
 * heic-decode, the package heic-convert itself uses, resolved from heic-convert's location so it
 * is always the copy heic-convert declares, whatever the install layout.
 *
 * The WebAssembly decoder is synchronous and takes 1–2 s for a 12 MP photo: on the main thread
 * it would stall every RPC and health check of the service, so each decode runs in a worker of
 * its own. A fresh worker also hands its WebAssembly heap (which never shrinks) back afterwards.
 *
 * libheif applies the HEIF transforms (irot/imir/clap), so the pixels are already upright and
 * EXIF orientation must not be applied again.
 */
export function decodeHeic(bytes: Buffer): Promise<DecodedHeic> {
  heicDecodePath ??= createRequire(require.resolve('heic-convert')).resolve('heic-decode');
  return new Promise<DecodedHeic>((resolve, reject) => {
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { heicDecodePath, bytes },
    });
    let settled = false;
    const settle = (outcome: () => void): void => {
      if (settled) return;
      settled = true;
      outcome();
      void worker.terminate();
    };
    worker.once('message', (reply: WorkerReply) =>
      settle(() => {
        if (!reply.ok) return reject(new Error(reply.message));
        const { width, height, data } = reply;
        if (!width || !height || data.length !== width * height * 4) {
          return reject(new Error(`decoder returned ${data.length} bytes for ${width}×${height}`));
        }
        resolve({ width, height, rgba: Buffer.from(data.buffer, data.byteOffset, data.byteLength) });
      }),
    );
    worker.once('error', (error) => settle(() => reject(error)));
    worker.once('exit', (code) => settle(() => reject(new Error(`HEIC decoder exited with code ${code}`))));
  });
}
