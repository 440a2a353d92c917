import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';

import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { Client } from 'pg';

import { DataDirInUseError, pingRedis, startPostgres, type PostgresServer } from '../stack';
import { isAlive } from '../stack/processes';
import { waitFor } from '../testing';

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (the jest global setup provides it)`);
  return value;
}

describe('S3 (s3rver from the global setup)', () => {
  const bucket = env('S3_BUCKET');
  const s3 = new S3Client({
    endpoint: env('S3_ENDPOINT'),
    region: env('S3_REGION'),
    credentials: { accessKeyId: env('S3_ACCESS_KEY_ID'), secretAccessKey: env('S3_SECRET_ACCESS_KEY') },
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  afterAll(() => s3.destroy());
  const key = (name: string) => `stack-test/${crypto.randomUUID()}/${name}`;

  it('puts, heads, gets and deletes an object', async () => {
    const Key = key('hello.txt');
    await s3.send(
      new PutObjectCommand({ Bucket: bucket, Key, Body: 'hello, bucket', ContentType: 'text/plain' }),
    );

    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key }));
    expect(head).toMatchObject({ ContentLength: 13, ContentType: 'text/plain' });
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key }));
    expect(await got.Body!.transformToString()).toBe('hello, bucket');

    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key }));
    await expect(s3.send(new HeadObjectCommand({ Bucket: bucket, Key }))).rejects.toMatchObject({
      name: 'NotFound',
    });
  });

  it('stores a streamed PutObject byte for byte (no aws-chunked framing)', async () => {
    const Key = key('streamed.bin');
    const data = crypto.randomBytes(300_000);
    await s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key,
        Body: Readable.from([data.subarray(0, 1000), data.subarray(1000)]),
        ContentLength: data.length,
      }),
    );

    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key }));
    expect(Buffer.from(await got.Body!.transformToByteArray()).equals(data)).toBe(true);
  });

  it('stores a streamed multipart upload (lib-storage) byte for byte', async () => {
    const Key = key('multipart.bin');
    const partSize = 5 * 1024 * 1024; // S3's minimum part size
    const chunks = Array.from({ length: 12 }, () => crypto.randomBytes(1024 * 1024));
    const expected = crypto.createHash('sha256').update(Buffer.concat(chunks)).digest('hex');
    let parts = 0;

    const upload = new Upload({
      client: s3,
      params: { Bucket: bucket, Key, Body: Readable.from(chunks), ContentType: 'application/octet-stream' },
      partSize,
      queueSize: 2,
    });
    upload.on('httpUploadProgress', (p) => (parts = Math.max(parts, p.part ?? 0)));
    await upload.done();

    expect(parts).toBe(3); // 12 MiB in 5 MiB parts: really multipart, not one PutObject
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key }));
    expect(head.ContentLength).toBe(12 * 1024 * 1024);
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key }));
    const actual = crypto
      .createHash('sha256')
      .update(await got.Body!.transformToByteArray())
      .digest('hex');
    expect(actual).toBe(expected);
  });

  it('serves a presigned GET URL to a plain HTTP client', async () => {
    const Key = key('presigned.txt');
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key, Body: 'signed for you' }));

    const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key }), { expiresIn: 60 });
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('signed for you');

    // s3rver does not verify SigV4 signatures (a tampered one passes); it does check expiry.
    const expired = await getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key }), {
      expiresIn: 60,
      signingDate: new Date(Date.now() - 120_000),
    });
    expect((await fetch(expired)).status).toBe(403);
  });
});

describe('Redis (from the global setup)', () => {
  it('answers PING', async () => {
    await expect(pingRedis(env('REDIS_URL'))).resolves.toBe(true);
  });
});

describe('Postgres lifecycle', () => {
  // Its own cluster: these tests stop and kill servers, which the shared one must survive.
  // Inside the run folder, so a leftover of a crashed run is stopped and removed by the next run.
  const dataDir = path.join(env('ATELIER_TEST_RUN_DIR'), `stack-test-${process.pid}`, 'pg');
  const running = new Set<PostgresServer>();
  const start = async () => {
    const server = await startPostgres({ dataDir });
    running.add(server);
    return server;
  };
  const stop = async (server: PostgresServer) => {
    await server.stop();
    running.delete(server);
  };
  afterAll(async () => {
    await Promise.all([...running].map((s) => s.stop()));
    fs.rmSync(path.dirname(dataDir), { recursive: true, force: true });
  });

  async function query<T extends object>(url: string, sql: string): Promise<T[]> {
    const client = new Client({ connectionString: url });
    await client.connect();
    try {
      return (await client.query<T>(sql)).rows;
    } finally {
      await client.end();
    }
  }
  const postmasterPid = () =>
    Number(fs.readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);

  it('keeps data across stop() and a restart on the same data directory', async () => {
    const first = await start();
    await query(first.url, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('survives restart')");
    await stop(first);
    await expect(query(first.url, 'SELECT 1')).rejects.toThrow(/ECONNREFUSED/);

    const second = await start();
    expect(await query(second.url, 'SELECT v FROM kept')).toEqual([{ v: 'survives restart' }]);
    await stop(second);
  });

  it('refuses a data directory that a live server of a live owner is using', async () => {
    const server = await start();
    await expect(startPostgres({ dataDir })).rejects.toBeInstanceOf(DataDirInUseError);
    await stop(server);
  });

  it('recovers after the server was killed (crash recovery on restart)', async () => {
    const crashed = await start();
    await query(crashed.url, "INSERT INTO kept VALUES ('committed before the crash')");
    process.kill(postmasterPid(), 'SIGKILL');
    await waitFor(
      async () =>
        !(await query(crashed.url, 'SELECT 1').then(
          () => true,
          () => false,
        )),
      { what: 'crash' },
    );
    await stop(crashed); // already dead: only settles the handle

    const restarted = await start();
    const rows = await query<{ v: string }>(restarted.url, 'SELECT v FROM kept ORDER BY v');
    expect(rows.map((r) => r.v)).toContain('committed before the crash');
    await stop(restarted);
  });

  it('stops an orphaned server left by a run whose process died, then starts', async () => {
    const orphan = await start();
    const orphanPid = postmasterPid();
    // Pretend the process that started it has died: give the owner record a pid that is gone.
    const deadPid = spawnSync(process.execPath, ['-e', '']).pid;
    const ownerFile = path.join(dataDir, 'atelier-owner.json');
    fs.writeFileSync(
      ownerFile,
      JSON.stringify({ ...JSON.parse(fs.readFileSync(ownerFile, 'utf8')), ownerPid: deadPid }),
    );

    const fresh = await start();
    expect(isAlive(orphanPid)).toBe(false);
    expect(postmasterPid()).not.toBe(orphanPid);
    expect(await query(fresh.url, 'SELECT count(*)::int AS n FROM kept')).toEqual([
      { n: expect.any(Number) },
    ]);
    await stop(orphan); // settles the old handle
    await stop(fresh);
  });

  it('removes a stale postmaster.pid whose process is gone', async () => {
    const deadPid = spawnSync(process.execPath, ['-e', '']).pid;
    fs.writeFileSync(path.join(dataDir, 'postmaster.pid'), `${deadPid}\n${dataDir}\n`);

    const server = await start();
    expect(await query(server.url, 'SELECT 1 AS ok')).toEqual([{ ok: 1 }]);
    await stop(server);
  });
});
