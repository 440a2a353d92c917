/**
 * The training upload's one body reader, driven over a real socket: a client gone before the
 * reader starts (the route awaited Redis or RPCs first) fails the read instead of leaving it
 * pending, on the replay path (digestUpload) and the streaming one, and the digest a replay is
 * compared with stays the computation stored answers were made with.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import express, { type Request } from 'express';
import { listen, type ClientStream } from '@atelier/kit';
import type { trainer } from '@atelier/protos';
import { waitFor } from '@atelier/infra/testing/wait';
import { digestUpload, streamUploadToTrainer } from '../src/routes/v1/upload';

const limits = { maxFileBytes: 100_000, maxFiles: 5, maxTotalBytes: 200_000 };
const boundary = 'atelier-unit-boundary';
const photo = Buffer.from('not really a jpeg, only bytes to hash '.repeat(100));
const body = Buffer.concat([
  Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="class"\r\n\r\nman\r\n`),
  Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="images"; filename="a.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`,
  ),
  photo,
  Buffer.from(`\r\n--${boundary}--\r\n`),
]);

let server: http.Server;
let port: number;
const arrived: Request[] = [];

beforeAll(async () => {
  const app = express();
  // Holds each request unread, as the route does while its Redis round trips run.
  app.post('/upload', (req) => void arrived.push(req));
  server = http.createServer(app);
  port = await listen(server, 0, '127.0.0.1');
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

/** Sends the request line, headers and `bytes` of the body, and waits for the server to hold it. */
async function send(bytes: Buffer): Promise<{ req: Request; socket: net.Socket }> {
  const before = arrived.length;
  const socket = net.connect(port, '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write(
    `POST /upload HTTP/1.1\r\nHost: test\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: ${body.length}\r\n\r\n`,
  );
  socket.write(bytes);
  const req = await waitFor(() => arrived[before], { what: 'the server to receive the request' });
  return { req, socket };
}

/** The client goes, and the server sees it before anything reads the body. */
async function leave({ req, socket }: { req: Request; socket: net.Socket }) {
  socket.destroy();
  await waitFor(() => req.destroyed, { what: 'the server to see the client go' });
}

/** Settles `read` with a deadline: a read that never settles fails here instead of hanging. */
async function outcome(read: Promise<unknown>): Promise<{ value?: unknown; error?: unknown }> {
  let settled: { value?: unknown; error?: unknown } | undefined;
  read.then(
    (value) => (settled = { value }),
    (error: unknown) => (settled = { error }),
  );
  return waitFor(() => settled, { what: 'the read to settle' });
}

const nullStream = () => {
  const calls: string[] = [];
  const stream: ClientStream<trainer.TrainVersionRequest, trainer.TrainVersionResponse> = {
    write: async () => void calls.push('write'),
    end: async () => {
      calls.push('end');
      return { images: 0, problems: [] };
    },
    cancel: () => void calls.push('cancel'),
    // Trainer never answers on its own here: only the reader can end the upload.
    response: new Promise(() => undefined),
  };
  return { stream, calls };
};

const framing = {
  header: () => ({ accountId: '', paymentId: '', versionId: '', maxRunning: 0 }),
  end: (_fields: Record<string, string>, files: number) => ({ files }),
};

const clientClosed = expect.objectContaining({
  code: 'invalid_argument',
  message: 'the client closed the upload',
});

describe.each([
  ['its whole body', body],
  ['half of its body', body.subarray(0, body.length / 2)],
])('a client that sent %s and left before the reader started', (_, bytes) => {
  it('fails the replay digest with 400 instead of leaving it pending', async () => {
    const held = await send(bytes);
    await leave(held);
    expect(await outcome(digestUpload(held.req, limits))).toEqual({ error: clientClosed });
  });

  it('fails the stream to trainer with 400 and closes it without its end marker', async () => {
    const held = await send(bytes);
    await leave(held);
    const { stream, calls } = nullStream();
    expect(await outcome(streamUploadToTrainer(held.req, stream, framing, limits))).toEqual({
      error: clientClosed,
    });
    expect(calls).toEqual(['end']);
  });
});

it('digests a body as stored answers were digested, and as the streaming path does', async () => {
  // The UploadDigest of `body`, as computed before the readers were merged: answers stored then
  // are compared with it.
  const stored = createHash('sha256')
    .update(
      JSON.stringify({
        files: [`images:${createHash('sha256').update(photo).digest('hex')}`],
        fields: [['class', 'man']],
      }),
    )
    .digest('hex');
  const replay = await send(body);
  expect(await outcome(digestUpload(replay.req, limits))).toEqual({ value: stored });
  replay.socket.destroy();

  const first = await send(body);
  const { stream } = nullStream();
  const streamed = await outcome(streamUploadToTrainer(first.req, stream, framing, limits));
  expect(streamed).toEqual({ value: { response: { images: 0, problems: [] }, digest: stored } });
  first.socket.destroy();
});
