/**
 * Whether a process that recorded itself (a snapshot's owner file, a record's operation owner) still
 * runs. A pid alone is not enough: pids are reused, so its start time is recorded and compared too.
 */
import { readFileSync } from 'fs';

/** Start time of a process in clock ticks since boot (/proc/<pid>/stat field 22); null off Linux or when it is gone. */
export function processStartTime(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 2 (the command) may contain spaces and parentheses: count fields after its last ")".
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const start = Number(fields[19]);
    return Number.isSafeInteger(start) ? start : null;
  } catch {
    return null;
  }
}

/** Whether the process with this pid (and, when known, this start time) is still running on this host. */
export function processAlive(owner: { pid: number; pidStart: number | null }): boolean {
  try {
    process.kill(owner.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (owner.pidStart === null) return true;
  const start = processStartTime(owner.pid);
  return start === null || start === owner.pidStart;
}
