import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';

import { waitFor } from '../testing/wait';
import { freePort } from './ports';
import { spawnServer, type Log } from './processes';

export interface RedisOptions {
  /** Working directory of the server (it persists nothing there). */
  dir: string;
  port?: number;
  log?: Log;
}

export interface RedisServer {
  url: string;
  port: number;
  stop(): Promise<void>;
}

const execFileAsync = promisify(execFile);

/** Starts a throwaway redis-server on 127.0.0.1 without persistence, installing it if needed. */
export async function startRedis(opts: RedisOptions): Promise<RedisServer> {
  const log = opts.log ?? (() => {});
  const binary = await ensureRedisInstalled(log);
  const dir = path.resolve(opts.dir);
  fs.mkdirSync(dir, { recursive: true });

  // A port from freePort() can be taken before redis binds it; then we pick another.
  for (let attempt = 1; ; attempt++) {
    // `--port 0` would disable TCP rather than pick a port, so a real one is chosen here.
    const port = opts.port ?? (await freePort());
    // prettier-ignore
    const server = spawnServer(binary, [
      '--bind', '127.0.0.1', '--port', String(port), '--dir', dir,
      '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--logfile', '',
      // Lets a later run find and stop this server if our process dies without stopping it.
      '--pidfile', path.join(dir, 'redis.pid'),
    ], { name: 'redis', cwd: dir, log });
    const url = `redis://127.0.0.1:${port}`;
    const ready = await waitFor(async () => server.exit ?? ((await pingRedis(url)) && 'ready'), {
      timeoutMs: 30_000,
      what: `redis-server on port ${port}`,
    }).catch(async (err: unknown) => {
      await server.stop('SIGKILL');
      throw err;
    });
    if (ready === 'ready') {
      log(`redis ready on 127.0.0.1:${port}`);
      return { url, port, stop: () => server.stop('SIGTERM') };
    }
    const output = server.output();
    if (opts.port === undefined && attempt < 5 && /address already in use/i.test(output)) {
      log(`port ${port} was taken, retrying`);
      continue;
    }
    throw new Error(`redis-server exited during start (code ${ready.code}):\n${output}`);
  }
}

/** Returns the path of redis-server, installing the Debian package when it is not on PATH (a
 * fresh machine does not have it; the package does not start a service by itself). */
async function ensureRedisInstalled(log: Log = () => {}): Promise<string> {
  const found = findOnPath('redis-server');
  if (found) return found;
  if (process.getuid?.() !== 0) {
    throw new Error('redis-server is not installed; run `sudo apt-get install -y redis-server`');
  }
  // Wait for a concurrent apt/dpkg (another test run installing the same thing) instead of failing.
  const install = (): Promise<unknown> =>
    execFileAsync(
      'apt-get',
      ['-o', 'DPkg::Lock::Timeout=300', 'install', '-y', '--no-install-recommends', 'redis-server'],
      {
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
        maxBuffer: 16 * 1024 * 1024,
      },
    );
  log('redis-server not found: installing it with apt-get');
  try {
    await install();
  } catch {
    log('apt-get install failed: running apt-get update and retrying');
    await execFileAsync('apt-get', ['-o', 'DPkg::Lock::Timeout=300', 'update'], {
      maxBuffer: 16 * 1024 * 1024,
    });
    await install();
  }
  const installed = findOnPath('redis-server');
  if (!installed) throw new Error('redis-server still not on PATH after apt-get install');
  return installed;
}

function findOnPath(command: string): string | undefined {
  // Debian installs to /usr/bin; sbin folders are added for shells with a minimal PATH.
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/local/bin', '/usr/bin', '/usr/sbin'];
  for (const dir of dirs.filter(Boolean)) {
    const candidate = path.join(dir, command);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Sends PING over a raw socket and resolves true on +PONG, false on anything else. No client
 * library: this also serves as the readiness probe before any client is configured. */
export function pingRedis(url: string, timeoutMs = 2_000): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: hostname, port: Number(port || 6379) });
    let reply = '';
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error('PING timed out')));
    socket.once('error', reject);
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString('utf8');
      if (!reply.includes('\r\n')) return;
      socket.end();
      resolve(reply.startsWith('+PONG'));
    });
    socket.once('close', () => resolve(false));
  });
}
