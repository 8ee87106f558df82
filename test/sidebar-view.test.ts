/**
 * How the Backups sidebar groups records into chains, for the shapes a live repository can have but
 * the engine will not make on request: branches, a parent that is gone, a record stuck in creating
 * whose owner stopped, and a parent loop in hand-edited records. Every record must appear exactly once.
 */
import * as assert from 'assert';
import { randomUUID } from 'crypto';
import type { BackupRecord } from '../lib/repository/records';
import { chainsOf, volumesOf } from '../plugins/backups-sidebar/view';

const NOW = new Date('2025-06-01T12:00:00Z');
let hour = 0;

function record(kind: BackupRecord['kind'], parent: BackupRecord | string | null, extra: Partial<BackupRecord> = {}): BackupRecord {
  const at = new Date(Date.UTC(2025, 4, 1, hour++)).toISOString();
  return {
    formatVersion: 1, id: randomUUID(), volumeId: 'vol', name: '', description: '', status: 'available', failReason: null,
    parentId: typeof parent === 'string' ? parent : (parent?.id ?? null), kind, dataTimestamp: at, createdAt: at, updatedAt: at,
    size: 1024, storedBytes: 100, objectCount: 1, chunkSize: 1024, blockSize: 1024, compression: 'none',
    snapshotId: null, snapshotProvider: null, host: 'h', objectPrefix: 'volume_vol/x', metadataSha256: null,
    leaseExpiresAt: null, sourcePath: null, encrypted: false, ...extra,
  };
}

const ids = (chain: { backups: { id: string }[] }) => chain.backups.map((b) => b.id);

describe('Backups sidebar: records as chains', () => {
  it('puts a branch (two children of one parent) and a differential in their full backup\'s chain, parents first', () => {
    const full = record('full', null);
    const a = record('incremental', full);
    const a2 = record('incremental', a);
    const b = record('incremental', full); // a second child of the full backup (a restore point taken again)
    const diff = record('differential', full);
    const chains = chainsOf([diff, a2, b, full, a], NOW);
    assert.strictEqual(chains.length, 1);
    assert.deepStrictEqual(ids(chains[0]), [full.id, a.id, a2.id, b.id, diff.id]);
    assert.deepStrictEqual(chains[0].backups.map((x) => x.depth), [0, 1, 2, 1, 1]);
    assert.strictEqual(chains[0].broken, null);
    assert.strictEqual(chains[0].storedBytes, 500);
  });

  it('shows backups whose parent is gone as a broken chain, and lists chains newest first', () => {
    const full = record('full', null);
    const orphan = record('incremental', randomUUID());
    const orphanChild = record('incremental', orphan);
    const newer = record('full', null);
    const chains = chainsOf([full, orphan, orphanChild, newer], NOW);
    assert.deepStrictEqual(chains.map(ids), [[newer.id], [orphan.id, orphanChild.id], [full.id]]);
    assert.match(chains[1].broken ?? '', /not in the repository/);
  });

  it('marks an operation whose owner stopped renewing its lease as stale, and a live one not', () => {
    const stuck = record('full', null, { status: 'creating', leaseExpiresAt: '2025-06-01T11:00:00Z' });
    const live = record('full', null, { status: 'creating', leaseExpiresAt: '2025-06-01T12:01:00Z' });
    const failed = record('full', null, { status: 'error', failReason: 'disk full', leaseExpiresAt: '2025-06-01T11:00:00Z' });
    const byId = new Map(chainsOf([stuck, live, failed], NOW).map((c) => [c.rootId, c.backups[0]]));
    assert.strictEqual(byId.get(stuck.id)!.stale, true);
    assert.strictEqual(byId.get(live.id)!.stale, false);
    assert.strictEqual(byId.get(failed.id)!.stale, false);
    assert.strictEqual(byId.get(failed.id)!.failReason, 'disk full');
  });

  it('still shows records whose parents form a loop', () => {
    const a = record('incremental', null);
    const b = record('incremental', a);
    a.parentId = b.id;
    const chains = chainsOf([a, b], NOW);
    assert.deepStrictEqual(chains.flatMap(ids).sort(), [a.id, b.id].sort());
    assert.match(chains[0].broken ?? '', /loop/);
  });

  it('groups by volume and leaves object names and hashes out', () => {
    const v1 = record('full', null, { volumeId: 'b-vol', sourcePath: '/dev/vg/b', metadataSha256: 'f'.repeat(64) });
    const v2 = record('full', null, { volumeId: 'a-vol' });
    const volumes = volumesOf([v1, v2], NOW);
    assert.deepStrictEqual(volumes.map((v) => [v.volumeId, v.backupCount, v.sourcePath]), [['a-vol', 1, null], ['b-vol', 1, '/dev/vg/b']]);
    const shown = volumes[1].chains[0].backups[0] as unknown as Record<string, unknown>;
    for (const hidden of ['objectPrefix', 'metadataSha256', 'leaseExpiresAt', 'formatVersion']) assert.ok(!(hidden in shown), hidden);
  });
});
