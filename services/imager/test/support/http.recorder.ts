/**
 * An HTTP forwarder that records every request it passes on (the order of starts and ends, as
 * event numbers rather than clock times) and lets a test answer or hold a request itself. Headers
 * go through untouched, Host included, so SigV4-signed requests still verify upstream.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  /** Path and query as received. */
  url: string;
  /** Event number when the request arrived. */
  started: number;
  /** Event number when its response was finished (or the connection closed). */
  ended?: number;
  status?: number;
}

/** Answer the request (return true) or let it through (false), possibly after waiting. */
export type Interceptor = (
  req: IncomingMessage,
  res: ServerResponse,
  record: RecordedRequest,
) => Promise<boolean> | boolean;

export interface HttpRecorder {
  url: string;
  port: number;
  requests: RecordedRequest[];
  /** Highest number of requests open at once so far. */
  maxInFlight(): number;
  /** Requests arrived so far whose URL matches. */
  seen(pattern: RegExp): RecordedRequest[];
  intercept(fn: Interceptor | undefined): void;
  /** Forward responses without Content-Length (chunked) in small pieces, so the client can neither
   * know the size in advance nor get the whole body in one read. */
  chunked(on: boolean): void;
  close(): Promise<void>;
}

export async function startHttpRecorder(target: string): Promise<HttpRecorder> {
  const upstream = new URL(target);
  const requests: RecordedRequest[] = [];
  let event = 0;
  let open = 0;
  let peak = 0;
  let interceptor: Interceptor | undefined;
  let stripLength = false;

  const server = http.createServer((req, res) => {
    const record: RecordedRequest = { method: req.method ?? 'GET', url: req.url ?? '/', started: ++event };
    requests.push(record);
    open += 1;
    peak = Math.max(peak, open);
    let closed = false;
    const done = () => {
      if (closed) return;
      closed = true;
      open -= 1;
      record.ended = ++event;
      record.status = res.statusCode;
    };
    res.on('finish', done).on('close', done);
    void (async () => {
      if (interceptor && (await interceptor(req, res, record))) return;
      const forward = http.request(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path: req.url,
          headers: req.headers,
        },
        (answer) => {
          const headers = { ...answer.headers };
          if (!stripLength) {
            res.writeHead(answer.statusCode ?? 502, headers);
            answer.pipe(res);
            return;
          }
          // Chunked, and in small pieces with a pause between them, as a slow network would.
          delete headers['content-length'];
          res.writeHead(answer.statusCode ?? 502, headers);
          void (async () => {
            for await (const data of answer as AsyncIterable<Buffer>) {
              for (let at = 0; at < data.length; at += 8 * 1024) {
                if (!res.write(data.subarray(at, at + 8 * 1024)))
                  await new Promise((resolve) => res.once('drain', resolve));
                await new Promise((resolve) => setImmediate(resolve));
              }
            }
            res.end();
          })().catch(() => res.destroy());
        },
      );
      forward.on('error', () => {
        if (!res.headersSent) res.writeHead(502).end();
        else res.destroy();
      });
      req.pipe(forward);
    })().catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    maxInFlight: () => peak,
    seen: (pattern) => requests.filter((r) => pattern.test(r.url)),
    intercept: (fn) => (interceptor = fn),
    chunked: (on) => (stripLength = on),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
