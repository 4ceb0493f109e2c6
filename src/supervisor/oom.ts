// OOM evidence. A child killed by SIGKILL that we did not send was most likely killed by the
// kernel's or systemd-oomd's OOM killer; cgroup v2 `memory.events` (oom_kill) confirms it when the
// supervisor runs in its own cgroup (as under systemd).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Path of this process's cgroup v2 memory.events, or null (cgroup v1, no /sys/fs/cgroup). */
export function memoryEventsPath(procCgroup = '/proc/self/cgroup', cgroupRoot = '/sys/fs/cgroup'): string | null {
  try {
    const line = readFileSync(procCgroup, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('0::'));
    if (line === undefined) return null;
    return join(cgroupRoot, line.slice(3).trim(), 'memory.events');
  } catch {
    return null;
  }
}

/** The oom_kill counter of memory.events, or null when unreadable. */
export function readOomKills(path: string | null): number | null {
  if (path === null) return null;
  try {
    const m = /^oom_kill (\d+)$/m.exec(readFileSync(path, 'utf8'));
    return m === null ? null : Number(m[1]);
  } catch {
    return null;
  }
}

/** The systemd unit of this process (from its cgroup path), or null. */
export function systemdUnit(procCgroup = '/proc/self/cgroup', env: NodeJS.ProcessEnv = process.env): string | null {
  if (!env.INVOCATION_ID && !env.NOTIFY_SOCKET) return null;
  try {
    const line = readFileSync(procCgroup, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('0::'));
    // The innermost .service of the path: a user unit sits below user@UID.service.
    const units = (line ?? '').split('/').filter((seg) => seg.endsWith('.service'));
    return units.at(-1) ?? null;
  } catch {
    return null;
  }
}
