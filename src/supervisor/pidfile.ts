// DIR/miner.pid: the supervisor's pid, guarded by an flock(2) held for the supervisor's life.
// The kernel drops the lock when the holder dies, so "running" is exactly "lock held" — no pid
// reuse guesswork — and a pid file whose lock is free is stale and taken over.
// DIR/supervisor.json: what `status`/`stop` need to reach the running supervisor.
import { closeSync, constants, fstatSync, fsyncSync, ftruncateSync, openSync, readFileSync, readSync, renameSync, statSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { AlreadyRunningError, SupervisorError } from './errors.js';
import { loadSysAddon } from './sys.js';

export const PID_FILE_NAME = 'miner.pid';
export const STATE_FILE_NAME = 'supervisor.json';

export interface PidLock {
  path: string;
  /** The dead supervisor's pid when a stale pid file was taken over. */
  stalePid: number | null;
  release(): void;
}

export function pidFilePath(runDir: string): string {
  return join(runDir, PID_FILE_NAME);
}

function parsePid(text: string): number | null {
  const n = Number.parseInt(text.trim().split('\n')[0] ?? '', 10);
  return Number.isSafeInteger(n) && n > 0 ? n : null;
}

function readFd(fd: number): string {
  const buf = Buffer.alloc(64);
  const n = readSync(fd, buf, 0, buf.length, 0);
  return buf.subarray(0, n).toString('utf8');
}

/** Take the run directory's pid file, or throw AlreadyRunningError naming the running pid. */
export function acquirePidLock(runDir: string): PidLock {
  const sys = loadSysAddon();
  const path = pidFilePath(runDir);
  for (let attempt = 0; attempt < 5; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, constants.O_RDWR | constants.O_CREAT, 0o644);
    } catch (err) {
      throw new SupervisorError('CNM_ERR_PIDFILE', `cannot open ${path}: ${(err as Error).message} (is the run directory writable?)`);
    }
    if (!sys.flock(fd, true, false)) {
      const pid = parsePid(readFd(fd));
      closeSync(fd);
      throw new AlreadyRunningError(path, pid);
    }
    // The holder we raced with may have unlinked the file between our open and our lock: then we
    // locked an orphan inode and must retry on the file that is now at `path`.
    let same = false;
    try {
      const a = fstatSync(fd);
      const b = statSync(path);
      same = a.ino === b.ino && a.dev === b.dev;
    } catch {
      same = false;
    }
    if (!same) {
      closeSync(fd);
      continue;
    }
    const stalePid = parsePid(readFd(fd));
    ftruncateSync(fd, 0);
    writeSync(fd, `${process.pid}\n`, 0);
    fsyncSync(fd);
    let released = false;
    return {
      path,
      stalePid: stalePid === process.pid ? null : stalePid,
      release() {
        if (released) return;
        released = true;
        // Unlink while still holding the lock, so a starter that opens after us makes a new file.
        try {
          unlinkSync(path);
        } catch {
          /* already gone */
        }
        try {
          sys.funlock(fd);
        } finally {
          closeSync(fd);
        }
      },
    };
  }
  throw new SupervisorError('CNM_ERR_PIDFILE', `could not lock ${path}: it keeps being replaced (another start racing?)`);
}

export interface PidFileState {
  path: string;
  /** Pid written in the file (null when absent or unreadable). */
  pid: number | null;
  /** A supervisor holds the lock. */
  running: boolean;
}

/** Is a supervisor running for this directory? Never takes the lock for longer than a probe. */
export function readPidFile(runDir: string): PidFileState {
  const path = pidFilePath(runDir);
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY);
  } catch {
    return { path, pid: null, running: false };
  }
  try {
    const pid = parsePid(readFd(fd));
    const sys = loadSysAddon();
    const free = sys.flock(fd, true, false);
    if (free) sys.funlock(fd);
    return { path, pid, running: !free };
  } finally {
    closeSync(fd);
  }
}

export interface RunState {
  pid: number;
  startedAt: string;
  /** http://host:port of the status server, when it listens. */
  statusUrl: string | null;
  /** The systemd unit this supervisor runs in, when it runs under systemd. */
  systemdUnit: string | null;
}

export function writeRunState(runDir: string, state: RunState): void {
  const path = join(runDir, STATE_FILE_NAME);
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o644 });
  renameSync(tmp, path);
}

export function readRunState(runDir: string): RunState | null {
  try {
    const v = JSON.parse(readFileSync(join(runDir, STATE_FILE_NAME), 'utf8')) as RunState;
    return typeof v === 'object' && v !== null && typeof v.pid === 'number' ? v : null;
  } catch {
    return null;
  }
}

export function removeRunState(runDir: string): void {
  try {
    unlinkSync(join(runDir, STATE_FILE_NAME));
  } catch {
    /* already gone */
  }
}
