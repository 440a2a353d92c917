import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';

import { waitFor } from '../testing/wait';

export type Log = (msg: string) => void;

export interface ServerProcess {
  readonly child: ChildProcess;
  /** Set once the process has exited. */
  readonly exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  /** The last lines the process printed, for error messages. */
  output(): string;
  /** Sends `signal`, escalates to SIGKILL after `graceMs`, resolves once the process is gone. */
  stop(signal: NodeJS.Signals, graceMs?: number): Promise<void>;
}

const KEPT_LINES = 60;

/** Spawns a long-running server as a child of this process. If this process exits without calling
 * stop() (a crashed test run), the child is still signalled so nothing outlives us. */
export function spawnServer(
  command: string,
  args: string[],
  opts: { name: string; cwd: string; uid?: number; gid?: number; env?: NodeJS.ProcessEnv; log?: Log },
): ServerProcess {
  const child = spawn(command, args, {
    cwd: opts.cwd,
    uid: opts.uid,
    gid: opts.gid,
    env: opts.env ?? process.env,
    detached: false,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const onOutput = (chunk: Buffer): void => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (!line.trim()) continue;
      lines.push(line);
      if (lines.length > KEPT_LINES) lines.shift();
      opts.log?.(`[${opts.name}] ${line}`);
    }
  };
  child.stdout?.on('data', onOutput);
  child.stderr?.on('data', onOutput);

  let exit: ServerProcess['exit'];
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      process.removeListener('exit', killOnExit);
      resolve();
    });
  });
  // spawn failures (ENOENT, EACCES) arrive as 'error' without 'exit'.
  child.once('error', (err) => {
    lines.push(String(err));
    exit ??= { code: null, signal: null };
  });
  const killOnExit = (): void => void child.kill('SIGKILL');
  process.on('exit', killOnExit);

  return {
    child,
    get exit() {
      return exit;
    },
    output: () => lines.join('\n'),
    async stop(signal, graceMs = 15_000) {
      if (exit || child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      // A plain timer, cleared on exit: a pending one would keep the event loop (and jest) alive.
      const escalate = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(escalate);
    },
  };
}

/** True while `pid` runs. A zombie counts as gone: an orphan's exit is reaped by pid 1, which in
 * some containers never reaps, and the dead process would otherwise look alive forever. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const state = statFields(pid)?.[0];
  return state !== undefined && state !== 'Z';
}

/** Fields 3.. of /proc/<pid>/stat (state first). The command name (field 2) may contain spaces
 * and parentheses, so the split starts after its last ')'. */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** Start time of a process in clock ticks since boot (field 22 of /proc/<pid>/stat); with the pid
 * it identifies a process even after the pid is reused. */
export function processStartTime(pid: number): string | undefined {
  return statFields(pid)?.[19];
}

export function commandLine(pid: number): string[] {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return [];
  }
}

/** Stops a process that is not our child (so there is no 'exit' event): signal, poll, escalate. */
export async function killAndWait(pid: number, signal: NodeJS.Signals, graceMs = 15_000): Promise<void> {
  try {
    process.kill(pid, signal);
  } catch {
    return;
  }
  try {
    await waitFor(() => !isAlive(pid), { timeoutMs: graceMs, what: `pid ${pid} to exit` });
  } catch {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      return;
    }
    await waitFor(() => !isAlive(pid), { timeoutMs: 5_000, what: `pid ${pid} to exit after SIGKILL` });
  }
}
