import fs from 'node:fs';
import path from 'node:path';

import { commandLine, isAlive, killAndWait } from '../stack/processes';

/** Pid files of the servers a run may leave behind, the program each must belong to, and the
 * signal for a quick clean exit (SIGTERM would make Postgres wait for its clients). */
const PID_FILES: Record<string, { program: string; signal: NodeJS.Signals }> = {
  'postmaster.pid': { program: 'postgres', signal: 'SIGINT' },
  'redis.pid': { program: 'redis-server', signal: 'SIGTERM' },
};

/** Creates `<base>/runs/<pid of this process>` for this jest run, first clearing the folders of runs
 * whose process is gone, including any server such a run left running (jest killed mid-run). */
export async function claimRunDir(base: string, log?: (msg: string) => void): Promise<string> {
  const runs = path.join(base, 'runs');
  fs.mkdirSync(runs, { recursive: true });
  for (const name of fs.readdirSync(runs)) {
    const pid = Number(name);
    // Our own pid here means an earlier run that had it has died (pids are reused).
    if (!Number.isInteger(pid) || (isAlive(pid) && pid !== process.pid)) continue;
    const dir = path.join(runs, name);
    await stopLeftoverServers(dir, log);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const dir = path.join(runs, String(process.pid));
  fs.mkdirSync(dir);
  return dir;
}

async function stopLeftoverServers(dir: string, log?: (msg: string) => void): Promise<void> {
  for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    const server = PID_FILES[entry.name];
    if (!server || !entry.isFile()) continue;
    const pidFile = path.join(entry.parentPath, entry.name);
    const pid = Number.parseInt(fs.readFileSync(pidFile, 'utf8'), 10);
    // Redis rewrites its title to "<path> <address>", so compare the start of argv[0].
    const isServer = path.basename(commandLine(pid)[0] ?? '').startsWith(server.program);
    if (pid > 0 && isAlive(pid) && isServer) {
      log?.(`stopping ${server.program} (pid ${pid}) left running by a dead test run`);
      await killAndWait(pid, server.signal);
    }
  }
}
