import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { listen } from '@atelier/kit';

import type { Log } from './processes';

export interface S3Options {
  /** Where objects are stored (s3rver keeps one folder per bucket). */
  dir: string;
  port?: number;
  bucket: string;
  log?: Log;
}

export interface S3Server {
  /** e.g. http://127.0.0.1:4568 — use with forcePathStyle: true. */
  endpoint: string;
  bucket: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  stop(): Promise<void>;
}

// The only credentials s3rver accepts: it checks request signatures against these.
const ACCESS_KEY_ID = 'S3RVER';
const SECRET_ACCESS_KEY = 'S3RVER';
const REGION = 'us-east-1';

/** The part of s3rver (untyped, CommonJS) used here. */
interface S3rverInstance {
  configureBuckets(): Promise<unknown>;
  callback(): http.RequestListener;
  logger: { close(): void };
}
type S3rverConstructor = new (options: Record<string, unknown>) => S3rverInstance;

/** Starts s3rver, an S3 wire-protocol server backed by the filesystem, in this process. */
export async function startS3(opts: S3Options): Promise<S3Server> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const S3rver = require('s3rver') as S3rverConstructor;
  const dir = path.resolve(opts.dir);
  fs.mkdirSync(dir, { recursive: true });
  const s3rver = new S3rver({
    directory: dir,
    silent: true, // also silences Koa's per-error console output
    vhostBuckets: false, // path-style only, like our clients
    configureBuckets: [{ name: opts.bucket, configs: [] }],
  });
  await s3rver.configureBuckets();

  // Our own HTTP server rather than s3rver.run(): run() reports a listen error (port taken) as an
  // uncaught 'error' event instead of rejecting.
  const server = http.createServer(s3rver.callback());
  const port = await listen(server, opts.port ?? 0, '127.0.0.1');
  const endpoint = `http://127.0.0.1:${port}`;
  opts.log?.(`s3rver ready on ${endpoint} (bucket ${opts.bucket}, data ${dir})`);

  return {
    endpoint,
    bucket: opts.bucket,
    region: REGION,
    accessKeyId: ACCESS_KEY_ID,
    secretAccessKey: SECRET_ACCESS_KEY,
    async stop() {
      // close() waits for keep-alive sockets of SDK clients, which may never go idle on their own.
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      s3rver.logger.close();
    },
  };
}
