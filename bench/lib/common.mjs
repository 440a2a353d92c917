// Small helpers every benchmark shares: paths, the workspace's CommonJS packages, waiting,
// statistics, the services' JSON logs and /proc readers.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

export { sleep };

export const BENCH_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const ROOT = path.resolve(BENCH_DIR, '..');
/** Generated inputs, logs and profiles (gitignored by bench/.gitignore). */
export const CACHE_DIR = path.join(BENCH_DIR, '.cache');
export const RESULTS_DIR = path.join(BENCH_DIR, 'results');

/** The workspace packages and dist/ folders are CommonJS: load them with require. */
export const require = createRequire(path.join(ROOT, 'package.json'));

/** Polls fn until it returns something truthy; a throw counts as "not yet". */
export async function waitFor(fn, { timeoutMs = 10_000, intervalMs = 50, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let lastError;
  for (;;) {
    try {
      const value = await fn();
      if (value) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const cause = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${cause}`);
    }
    await sleep(intervalMs);
  }
}

export const now = () => performance.now();

export function percentile(values, p) {
  if (!values.length) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

export const median = (values) => percentile(values, 50);
export const round = (x, digits = 1) => (Number.isFinite(x) ? Number(x.toFixed(digits)) : x);
export const mib = (bytes) => bytes / (1024 * 1024);

/** Times fn `runs` times (after `warmup` untimed runs); answers the durations in ms. */
export async function timeRuns(fn, { runs, warmup = 0 }) {
  for (let i = 0; i < warmup; i++) await fn(i);
  const times = [];
  for (let i = 0; i < runs; i++) {
    const t = now();
    await fn(i);
    times.push(now() - t);
  }
  return times;
}

// ---- the services' logs ---------------------------------------------------------------------

/** Every JSON line of a service's log, with its time in epoch ms (`at`). */
export function logEntries(file) {
  const entries = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.startsWith('{')) continue; // a warning printed by Node or a library
    try {
      const j = JSON.parse(line);
      entries.push({ ...j, at: Date.parse(j.time) });
    } catch {
      // a line cut short by a process stopped mid-write
    }
  }
  return entries;
}

/** The last JSON log line of a service matching pred. */
export const lastLog = (file, pred) => logEntries(file).findLast(pred);

// ---- /proc ---------------------------------------------------------------------------------

function statusField(pid, field) {
  try {
    const line = fs
      .readFileSync(`/proc/${pid}/status`, 'utf8')
      .split('\n')
      .find((l) => l.startsWith(`${field}:`));
    return line ? Number(line.split(/\s+/)[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Peak resident set size (VmHWM) in bytes. */
export const peakRss = (pid) => statusField(pid, 'VmHWM');
/** Current resident set size in bytes. */
export const rss = (pid) => statusField(pid, 'VmRSS');

/** Resets VmHWM to the current RSS (writing 5 to clear_refs), so a later peak belongs to what ran
 * in between. Answers false when the kernel refuses. */
export function resetPeakRss(pid) {
  try {
    fs.writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

const TICKS_PER_S = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

function statOf(pid) {
  try {
    const raw = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm may contain spaces: the fields start after the last ')'.
    const fields = raw.slice(raw.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(fields[1]), utime: Number(fields[11]), stime: Number(fields[12]) };
  } catch {
    return undefined;
  }
}

/** CPU seconds (user + system) used so far by pid and, with tree, by each of its descendants alive
 * now: a map pid → seconds, to be compared with cpuDelta (processes that exit in between would
 * otherwise take their past CPU time with them). */
export function cpuSnapshot(pid, { tree = false } = {}) {
  const out = new Map();
  if (!pid) return out;
  for (const p of tree ? descendants(pid) : [pid]) {
    const s = statOf(p);
    if (s) out.set(p, (s.utime + s.stime) / TICKS_PER_S);
  }
  return out;
}

/** CPU seconds used between two snapshots by the processes alive at the second one. */
export function cpuDelta(before, after) {
  let total = 0;
  for (const [pid, seconds] of after) total += seconds - (before.get(pid) ?? 0);
  return total;
}

export const cpuSeconds = (pid, opts) => [...cpuSnapshot(pid, opts).values()].reduce((a, b) => a + b, 0);

function descendants(root) {
  const children = new Map();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = statOf(Number(name));
    if (!s) continue;
    if (!children.has(s.ppid)) children.set(s.ppid, []);
    children.get(s.ppid).push(Number(name));
  }
  const out = [root];
  for (let i = 0; i < out.length; i++) out.push(...(children.get(out[i]) ?? []));
  return out;
}

// ---- machine and commit ----------------------------------------------------------------------

export function machine() {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    model: cpus[0]?.model ?? 'unknown',
    memory: `${round(os.totalmem() / 1024 ** 3, 1)} GiB`,
    node: process.version,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
  };
}

export function commit() {
  try {
    const sha = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], {
      cwd: ROOT,
      encoding: 'utf8',
    }).trim();
    return dirty ? `${sha}+dirty` : sha;
  } catch {
    return 'unknown';
  }
}

export function log(message) {
  process.stderr.write(`[bench] ${message}\n`);
}
