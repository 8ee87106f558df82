import type { Command } from '../command';
import { REPO_OPTIONS, REPO_USAGE, formatBytes, openRepo, printJson, str } from '../common';

export const cleanup: Command = {
  name: 'cleanup',
  summary: "clean up this host's interrupted operations (run at start-up, on the host itself)",
  usage: `volume-backup cleanup --repo R [--host H] [--state-dir DIR] [--json]
Operations whose owner was a process of host H (default: this machine's name) that is gone, and any
host's operations whose lease has expired, are ended:
  creating → error (partial objects removed); restoring → available (the restore failed);
  deleting → the deletion is finished; leases and temporary snapshots of dead processes released.
Operations still running (a live process on this machine, a fresh lease of another host) are left alone.
For a host that is gone for good, use reset-status (or wait for its leases to expire).
  --state-dir DIR        where temporary-snapshot owner files are (default: VOLUME_BACKUP_STATE_DIR
                         or /var/lib/volume-backup/temporaries)
${REPO_USAGE}`,
  options: { ...REPO_OPTIONS, 'state-dir': { type: 'string' } },
  async run(values, ctx) {
    const { cleanupHost } = await import('../../engine/cleanup');
    const repo = await openRepo(values, ctx);
    try {
      const result = await cleanupHost(repo, {
        stateDir: str(values, 'state-dir'),
        signal: ctx.signal,
        log: { info: () => undefined, warn: () => undefined },
      });
      if (values.json) printJson(ctx, result);
      else {
        const out = (line: string) => ctx.stdout.write(`${line}\n`);
        for (const b of result.failedBackups) out(`backup ${b.backupId} (volume ${b.volumeId}) was interrupted: now error, ${formatBytes(b.bytesFreed)} of partial objects removed${b.objectsRemoved ? '' : ' (some remain: prune removes them)'}`);
        for (const r of result.failedRestores) {
          const target = !r.target ? 'its target is incomplete' : r.targetRemoved ? `its incomplete target ${r.target.path}, which it had created, was removed` : `its target ${r.target.path} on host ${r.target.host} is incomplete`;
          out(`a restore of backup ${r.backupId} (volume ${r.volumeId}) was interrupted and failed: ${target}; the backup is available again`);
        }
        for (const d of result.finishedDeletes) out(`finished deleting backup ${d.backupId} (${formatBytes(d.bytesFreed)} freed)`);
        for (const d of result.keptDeletes) out(`kept backup ${d.backupId}: ${d.reason}`);
        for (const l of result.releasedLeases) out(`released the lease on volume ${l.volumeId} held by dead process ${l.pid} (${l.operation})`);
        for (const s of result.skipped) out(`left backup ${s.backupId} (${s.status}) alone: ${s.reason}`);
        for (const s of result.snapshots?.removed ?? []) out(`removed temporary ${s.provider} snapshot ${s.name} of ${s.volume}`);
        for (const e of result.errors) out(`could not clean ${e.backupId ?? e.volumeId ?? ''}: ${e.message}`);
        const touched = result.failedBackups.length + result.failedRestores.length + result.finishedDeletes.length + result.keptDeletes.length + result.releasedLeases.length + (result.snapshots?.removed.length ?? 0);
        out(`cleanup of host ${result.host}: ${touched === 0 ? 'nothing to clean' : `${touched} item(s) cleaned`}${result.errors.length ? `, ${result.errors.length} error(s)` : ''}`);
      }
      return result.errors.length === 0 ? 0 : 1;
    } finally {
      await repo.close();
    }
  },
};
