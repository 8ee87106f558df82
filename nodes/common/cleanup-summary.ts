/** One log line that says what a driver-config's start-up cleanup did (cleanupHost's result). */
import type { HostCleanupResult } from '../../lib/engine/cleanup';
import { formatBytes } from './format';

/** "" when there was nothing to clean. */
export function cleanupSummary(result: HostCleanupResult): string {
  const parts: string[] = [];
  const count = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;
  if (result.failedBackups.length) {
    const bytes = result.failedBackups.reduce((sum, b) => sum + b.bytesFreed, 0);
    const ids = result.failedBackups.map((b) => b.backupId).join(', ');
    parts.push(`${count(result.failedBackups.length, 'interrupted backup', 'interrupted backups')} marked error, ${formatBytes(bytes)} of partial objects removed (${ids})`);
  }
  if (result.failedRestores.length) {
    const which = result.failedRestores.map((b) => `${b.backupId}${b.target ? ` to ${b.target.path}${b.targetRemoved ? ', removed' : ', incomplete'}` : ''}`);
    parts.push(`${count(result.failedRestores.length, 'interrupted restore', 'interrupted restores')} failed, backup available again (${which.join('; ')})`);
  }
  if (result.finishedDeletes.length) parts.push(`${count(result.finishedDeletes.length, 'deletion', 'deletions')} finished`);
  if (result.keptDeletes.length) parts.push(`${count(result.keptDeletes.length, 'deletion', 'deletions')} given back (a backup depends on it)`);
  if (result.releasedLeases.length) parts.push(`${count(result.releasedLeases.length, 'lease', 'leases')} of stopped processes released`);
  const snapshots = result.snapshots?.removed.length ?? 0;
  if (snapshots) parts.push(`${count(snapshots, 'temporary snapshot', 'temporary snapshots')} removed`);
  return parts.length ? `start-up cleanup of host ${result.host}: ${parts.join('; ')}` : '';
}
