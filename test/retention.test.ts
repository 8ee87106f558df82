/**
 * The retention policy on synthetic histories, without I/O: restic's documented examples, calendar
 * edges, chains, statuses, several volumes; and properties over random forests of chains.
 */
import { strict as assert } from 'assert';
import { randomUUID } from 'crypto';
import fc from 'fast-check';
import { BackupRecord, BackupStatus, parseRecord } from '../lib/repository/records';
import { parseDuration, subtractDuration } from '../lib/repository/durations';
import { ancestorIds, applyKeepRules, backupsNeeding, describePolicy, isoWeekKey, planRetention, resolvePolicy, VolumePlan } from '../lib/repository/retention';

const NOW = new Date('2030-01-01T00:00:00Z');

function rec(fields: Partial<BackupRecord> & { dataTimestamp: string }): BackupRecord {
  const id = fields.id ?? randomUUID();
  const volumeId = fields.volumeId ?? 'vol-a';
  return parseRecord({
    formatVersion: 1,
    id,
    volumeId,
    name: '',
    description: '',
    status: 'available',
    failReason: null,
    parentId: null,
    kind: fields.parentId ? 'incremental' : 'full',
    createdAt: fields.dataTimestamp,
    updatedAt: fields.dataTimestamp,
    size: 1024,
    storedBytes: 100,
    objectCount: 1,
    chunkSize: 1024,
    blockSize: 512,
    compression: 'none',
    snapshotId: null,
    snapshotProvider: null,
    host: 'test-host',
    objectPrefix: `volume_${volumeId}/20300101000000/backup_${id}`,
    metadataSha256: null,
    leaseExpiresAt: null,
    sourcePath: null,
    encrypted: false,
    ...fields,
  });
}

/** One full backup per timestamp (no chains), like restic's independent snapshots. */
function fulls(timestamps: string[], volumeId = 'vol-a'): BackupRecord[] {
  return timestamps.map((t) => rec({ dataTimestamp: t, volumeId }));
}

/** A chain: a full backup then incrementals, one per timestamp. */
function chain(timestamps: string[], volumeId = 'vol-a', status: (i: number) => BackupStatus = () => 'available'): BackupRecord[] {
  const out: BackupRecord[] = [];
  timestamps.forEach((t, i) => out.push(rec({ dataTimestamp: t, volumeId, parentId: i === 0 ? null : out[i - 1].id, status: status(i) })));
  return out;
}

function onlyVolume(records: BackupRecord[], policy: unknown, now = NOW): VolumePlan {
  const plan = planRetention(records, policy, { now });
  assert.equal(plan.volumes.length, 1);
  return plan.volumes[0];
}

const keptTimes = (plan: VolumePlan) => plan.keep.map((k) => k.record.dataTimestamp).sort();
const deletedTimes = (plan: VolumePlan) => plan.delete.map((d) => d.record.dataTimestamp).sort();
const reasonsOf = (plan: VolumePlan, t: string) => plan.keep.find((k) => k.record.dataTimestamp === t)?.reasons;

describe('retention: durations', () => {
  it('parses restic durations in any order and refuses what restic refuses', () => {
    assert.deepEqual(parseDuration('1y2m3d4h'), { years: 1, months: 2, days: 3, hours: 4 });
    assert.deepEqual(parseDuration('30d'), { years: 0, months: 0, days: 30, hours: 0 });
    assert.deepEqual(parseDuration('12h1y'), { years: 1, months: 0, days: 0, hours: 12 });
    for (const bad of ['', '1w', '3', 'd', '1d1d', '-1d', '1.5d', '1 d', 7]) {
      assert.throws(() => parseDuration(bad), (e: Error & { code?: string }) => e.code === 'INVALID_ARGUMENT' && /duration/.test(e.message), String(bad));
    }
  });

  it('subtracts months by calendar, as Go AddDate does (31 March − 1 month = 3 March)', () => {
    assert.equal(subtractDuration(new Date('2023-03-31T10:00:00Z'), parseDuration('1m')).toISOString(), '2023-03-03T10:00:00.000Z');
    assert.equal(subtractDuration(new Date('2024-05-10T12:00:00Z'), parseDuration('1y2m3d4h')).toISOString(), '2023-03-07T08:00:00.000Z');
  });
});

describe('retention: policy validation', () => {
  it('gives clear errors for unknown rules, bad counts, bad durations and time zones', () => {
    const bad: [unknown, RegExp][] = [
      [{ keepLst: 3 }, /unknown rule keep-lst/],
      [{ keepLast: -1 }, /keep-last: must be a whole number from 0 to 1000000, or "unlimited" \(got -1\)/],
      [{ keepLast: '-1' }, /keep-last: must be a whole number from 0 to 1000000, or "unlimited" \(got "-1"\)/],
      [{ keepDaily: 1.5 }, /keep-daily: must be a whole number/],
      [{ keepDaily: 'seven' }, /keep-daily: must be a whole number .*\(got "seven"\)/],
      [{ keepWithin: '1w' }, /keep-within "1w" is not a duration/],
      [{ keepFailedFor: 'soon' }, /keep-failed-for/],
      [{ keepDaily: 1, timeZone: 'Mars/Olympus' }, /unknown time zone/],
      ['keep everything', /policy/],
    ];
    for (const [policy, message] of bad) {
      assert.throws(() => resolvePolicy(policy), (e: Error & { code?: string }) => e.code === 'INVALID_ARGUMENT' && message.test(e.message), JSON.stringify(policy));
    }
  });

  it('accepts numbers as strings (msg.policy from JSON) and "unlimited"', () => {
    const p = resolvePolicy({ keepLast: '3', keepDaily: 'unlimited', keepWithin: '30d' });
    assert.equal(p.last, 3);
    assert.equal(p.counts.daily, -1);
    assert.match(describePolicy(p), /the 3 newest, all daily, all within 30d of the newest/);
  });
});

describe('retention: restic forget semantics', () => {
  // restic docs, "Removing snapshots according to a policy": one backup every Sunday for 12 weeks.
  const sundays = [
    '2019-09-01', '2019-09-08', '2019-09-15', '2019-09-22', '2019-09-29', '2019-10-06',
    '2019-10-13', '2019-10-20', '2019-10-27', '2019-11-03', '2019-11-10', '2019-11-17',
  ].map((d) => `${d}T11:00:00.000Z`);

  it('keep-daily 4 on 12 Sundays keeps the last four Sundays, as in the restic docs', () => {
    const plan = onlyVolume(fulls(sundays), { keepDaily: 4 });
    assert.deepEqual(keptTimes(plan), sundays.slice(8));
    assert.deepEqual(deletedTimes(plan), sundays.slice(0, 8));
    for (const k of plan.keep) assert.deepEqual(k.reasons, ['keep-daily']);
  });

  it('keep-weekly 3 and keep-monthly 2 on the same history', () => {
    const weekly = onlyVolume(fulls(sundays), { keepWeekly: 3 });
    assert.deepEqual(keptTimes(weekly), sundays.slice(9));
    // Months: November (newest: 17th), October (27th).
    const monthly = onlyVolume(fulls(sundays), { keepMonthly: 2 });
    assert.deepEqual(keptTimes(monthly), [sundays[8], sundays[11]]);
  });

  it('keeps the oldest backup too while a rule has count left (restic ≥ 0.15 "oldest")', () => {
    const plan = onlyVolume(fulls(sundays.slice(0, 3)), { keepMonthly: 5 });
    // Only one month has backups: its newest, plus the oldest since 4 counts are left.
    assert.deepEqual(keptTimes(plan), [sundays[0], sundays[2]]);
    assert.deepEqual(reasonsOf(plan, sundays[0]), ['keep-monthly (oldest)']);
    assert.deepEqual(reasonsOf(plan, sundays[2]), ['keep-monthly']);
  });

  it('daily backups for 100 years with --keep-daily 7 --keep-weekly 5 --keep-monthly 12 --keep-yearly 75', () => {
    // The docs' example: 7 dailies, the weeklies the dailies do not already include, 11 or 12
    // month-ends, 74 or 75 year-ends. Our history ends on Saturday 2024-06-15.
    const days: string[] = [];
    for (let t = Date.UTC(1924, 5, 16, 12); t <= Date.UTC(2024, 5, 15, 12); t += 86_400_000) days.push(new Date(t).toISOString());
    assert.equal(days.length, 36525);
    const plan = onlyVolume(fulls(days), { keepDaily: 7, keepWeekly: 5, keepMonthly: 12, keepYearly: 75 });
    const iso = (y: number, m: number, d: number) => new Date(Date.UTC(y, m - 1, d, 12)).toISOString();
    const expected = new Set<string>();
    for (let d = 9; d <= 15; d++) expected.add(iso(2024, 6, d)); // 7 dailies
    for (const d of [[6, 2], [5, 26], [5, 19]]) expected.add(iso(2024, d[0], d[1])); // Sundays of the 3 weeks before
    expected.add(iso(2024, 5, 31));
    for (let m = 4; m >= 1; m--) expected.add(iso(2024, m + 1, 0));
    for (let m = 12; m >= 7; m--) expected.add(iso(2023, m + 1, 0)); // month-ends back to July 2023
    for (let y = 2023; y >= 1950; y--) expected.add(iso(y, 12, 31)); // 74 year-ends + 2024's newest
    assert.deepEqual(keptTimes(plan), [...expected].sort());
    // 7 dailies + 3 more weeklies + 11 more month-ends + 74 more year-ends, 2023-12-31 being both.
    assert.equal(plan.keep.length, 7 + 3 + 11 + 74 - 1);
    assert.deepEqual(reasonsOf(plan, iso(2024, 6, 15)), ['keep-daily', 'keep-weekly', 'keep-monthly', 'keep-yearly']);
    assert.deepEqual(reasonsOf(plan, iso(2023, 12, 31)), ['keep-monthly', 'keep-yearly']);
  });

  it('keep-last N keeps the N newest; the rules are ORed', () => {
    const plan = onlyVolume(fulls(sundays), { keepLast: 2, keepMonthly: 3 });
    assert.deepEqual(keptTimes(plan), [sundays[4], sundays[8], sundays[10], sundays[11]]);
    assert.deepEqual(reasonsOf(plan, sundays[11]), ['keep-last', 'keep-monthly']);
    assert.deepEqual(reasonsOf(plan, sundays[10]), ['keep-last']);
  });

  it('keep-within counts back from the newest backup that is not in the future, strictly after', () => {
    const latest = '2024-05-10T12:00:00.000Z';
    const threshold = '2023-03-07T08:00:00.000Z'; // latest − 1y2m3d4h
    const justAfter = '2023-03-07T08:00:00.001Z';
    const future = '2031-01-01T00:00:00.000Z'; // after NOW: not the reference point, but kept
    const plan = onlyVolume(fulls([threshold, justAfter, latest, future, '2020-01-01T00:00:00.000Z']), { keepWithin: '1y2m3d4h' });
    assert.deepEqual(keptTimes(plan), [justAfter, latest, future]);
    assert.deepEqual(reasonsOf(plan, latest), ['keep-within 1y2m3d4h']);
  });

  it('keep-within-daily keeps one per day inside the window', () => {
    const times = ['2024-05-10T23:00:00.000Z', '2024-05-10T08:00:00.000Z', '2024-05-09T08:00:00.000Z', '2024-05-01T08:00:00.000Z'];
    const plan = onlyVolume(fulls(times), { keepWithinDaily: '3d' });
    assert.deepEqual(keptTimes(plan), ['2024-05-09T08:00:00.000Z', '2024-05-10T23:00:00.000Z']);
  });

  it('weeks are ISO weeks: Monday to Sunday, across the new year', () => {
    assert.equal(isoWeekKey(2020, 12, 31), 202053);
    assert.equal(isoWeekKey(2021, 1, 3), 202053);
    assert.equal(isoWeekKey(2021, 1, 4), 202101);
    assert.equal(isoWeekKey(2019, 12, 30), 202001);
    const plan = onlyVolume(fulls(['2020-12-31T10:00:00.000Z', '2021-01-03T10:00:00.000Z', '2021-01-04T10:00:00.000Z']), { keepWeekly: 2 });
    assert.deepEqual(keptTimes(plan), ['2021-01-03T10:00:00.000Z', '2021-01-04T10:00:00.000Z']);
  });

  it('calendar rules use the policy time zone', () => {
    const times = ['2024-03-09T12:00:00.000Z', '2024-03-10T23:30:00.000Z', '2024-03-11T00:30:00.000Z'];
    assert.deepEqual(keptTimes(onlyVolume(fulls(times), { keepDaily: 2 })), times.slice(1));
    // In New York both late ones fall on 10 March.
    assert.deepEqual(keptTimes(onlyVolume(fulls(times), { keepDaily: 2, timeZone: 'America/New_York' })), [times[0], times[2]]);
  });

  it('"unlimited" keeps every period', () => {
    const plan = onlyVolume(fulls(sundays), { keepMonthly: 'unlimited' });
    assert.deepEqual(keptTimes(plan), [sundays[0], sundays[4], sundays[8], sundays[11]]);
  });

  it('no keep rule keeps every complete backup (restic refuses an empty policy too)', () => {
    const failed = rec({ dataTimestamp: sundays[5], status: 'error', failReason: 'disk full' });
    const plan = onlyVolume([...fulls(sundays), failed], {});
    assert.equal(plan.keep.length, 12);
    assert.deepEqual(plan.delete.map((d) => d.record.id), [failed.id]);
    assert.equal(plan.delete[0].reason, 'failed: disk full');
  });

  it('applyKeepRules is independent of the input order', () => {
    const records = fulls(sundays);
    const policy = resolvePolicy({ keepLast: 1, keepWeekly: 3, keepMonthly: 2 });
    const a = applyKeepRules(records, policy, NOW);
    const b = applyKeepRules([...records].reverse(), policy, NOW);
    const byId = (x: [string, unknown], y: [string, unknown]) => x[0].localeCompare(y[0]);
    assert.deepEqual([...a.entries()].sort(byId), [...b.entries()].sort(byId));
  });
});

describe('retention: chains', () => {
  it('keep-last 2 over two chains keeps the newest chain up to its full and deletes the older chain, children first', () => {
    const old = chain(['2024-01-01T00:00:00Z', '2024-01-02T00:00:00Z', '2024-01-03T00:00:00Z']);
    const fresh = chain(['2024-02-01T00:00:00Z', '2024-02-02T00:00:00Z', '2024-02-03T00:00:00Z']);
    const plan = onlyVolume([...old, ...fresh], { keepLast: 2 });
    assert.deepEqual(plan.keep.map((k) => k.record.id), [fresh[2].id, fresh[1].id, fresh[0].id]);
    assert.deepEqual(plan.keep[0].reasons, ['keep-last']);
    assert.deepEqual(plan.keep[1].reasons, ['keep-last', `parent of ${fresh[2].id}`]);
    assert.deepEqual(plan.keep[2].reasons, [`parent of ${fresh[1].id}`]);
    assert.deepEqual(plan.delete.map((d) => d.record.id), [old[2].id, old[1].id, old[0].id]);
    assert.deepEqual(plan.delete.map((d) => d.reason), ['no keep rule matches', 'no keep rule matches', 'no keep rule matches']);
    assert.equal(plan.bytesFreed, 300);
  });

  it('an old incremental kept by a rule keeps its whole chain; the rest of the chain goes', () => {
    const c = chain(['2024-01-01T00:00:00Z', '2024-01-15T00:00:00Z', '2024-01-31T00:00:00Z', '2024-02-01T00:00:00Z', '2024-02-02T00:00:00Z']);
    const plan = onlyVolume(c, { keepMonthly: 1, keepYearly: 1, keepDaily: 1 }); // keeps only the newest (02-02)…
    assert.deepEqual(plan.keep.map((k) => k.record.id), [c[4].id, c[3].id, c[2].id, c[1].id, c[0].id]);
    const plan2 = onlyVolume(c, { keepMonthly: 2 }); // …Jan's newest and Feb's newest: still the whole chain
    assert.equal(plan2.delete.length, 0);
  });

  it('a differential keeps its full backup but not the incrementals beside it', () => {
    const full = rec({ dataTimestamp: '2024-01-01T00:00:00Z' });
    const inc = rec({ dataTimestamp: '2024-01-02T00:00:00Z', parentId: full.id });
    const diff = rec({ dataTimestamp: '2024-01-03T00:00:00Z', parentId: full.id, kind: 'differential' });
    const plan = onlyVolume([full, inc, diff], { keepLast: 1 });
    assert.deepEqual(plan.keep.map((k) => k.record.id), [diff.id, full.id]);
    assert.deepEqual(plan.delete.map((d) => d.record.id), [inc.id]);
  });

  it('volumes are independent; a volume filter plans only that volume', () => {
    const a = chain(['2024-01-01T00:00:00Z', '2024-01-02T00:00:00Z'], 'vol-a');
    const b = chain(['2023-01-01T00:00:00Z', '2023-01-02T00:00:00Z', '2023-01-03T00:00:00Z'], 'vol-b');
    const b2 = fulls(['2023-02-01T00:00:00Z'], 'vol-b');
    const plan = planRetention([...a, ...b, ...b2], { keepLast: 1 }, { now: NOW });
    assert.deepEqual(plan.volumes.map((v) => v.volumeId), ['vol-a', 'vol-b']);
    assert.equal(plan.volumes[0].keep.length, 2);
    assert.deepEqual(plan.volumes[1].keep.map((k) => k.record.id), [b2[0].id]);
    assert.deepEqual(plan.volumes[1].delete.map((d) => d.record.id), [b[2].id, b[1].id, b[0].id]);
    const one = planRetention([...a, ...b, ...b2], { keepLast: 1 }, { now: NOW, volumeId: 'vol-b' });
    assert.deepEqual(one.volumes.map((v) => v.volumeId), ['vol-b']);
  });

  it('reports a kept backup whose parent is missing, and deletes nothing because of it', () => {
    const orphan = rec({ dataTimestamp: '2024-01-02T00:00:00Z', parentId: randomUUID() });
    const plan = onlyVolume([orphan], { keepLast: 1 });
    assert.equal(plan.keep.length, 1);
    assert.match(plan.problems[0], /missing from the repository/);
  });
});

describe('retention: statuses', () => {
  const lease = (ms: number) => new Date(NOW.getTime() + ms).toISOString();

  it('a backup being created keeps its parent chain even when the policy would delete it', () => {
    const c = chain(['2024-01-01T00:00:00Z', '2024-01-02T00:00:00Z']);
    const other = chain(['2024-03-01T00:00:00Z']);
    const creating = rec({ dataTimestamp: '2024-04-01T00:00:00Z', parentId: c[1].id, status: 'creating', leaseExpiresAt: lease(30_000) });
    const plan = onlyVolume([...c, ...other, creating], { keepLast: 1 });
    const ids = plan.keep.map((k) => k.record.id);
    assert.deepEqual(new Set(ids), new Set([creating.id, c[1].id, c[0].id, other[0].id]));
    assert.deepEqual(plan.keep.find((k) => k.record.id === creating.id)!.reasons, ['being created']);
    assert.deepEqual(plan.keep.find((k) => k.record.id === c[1].id)!.reasons, [`parent of ${creating.id}`]);
    assert.equal(plan.delete.length, 0);
  });

  it('a backup whose writer stopped (lease expired) is deleted as abandoned and pins nothing', () => {
    const c = chain(['2024-01-01T00:00:00Z', '2024-01-02T00:00:00Z']);
    const newer = fulls(['2024-03-01T00:00:00Z']);
    const abandoned = rec({ dataTimestamp: '2024-04-01T00:00:00Z', parentId: c[1].id, status: 'creating', leaseExpiresAt: lease(-1) });
    const plan = onlyVolume([...c, ...newer, abandoned], { keepLast: 1 });
    assert.deepEqual(plan.keep.map((k) => k.record.id), [newer[0].id]);
    assert.deepEqual(plan.delete.map((d) => d.record.id), [abandoned.id, c[1].id, c[0].id]);
    assert.match(plan.delete[0].reason, /^abandoned/);
  });

  it('a backup being restored is kept with its chain; one whose restore stopped counts as available', () => {
    const c = chain(['2024-01-01T00:00:00Z', '2024-01-02T00:00:00Z'], 'vol-a', (i) => (i === 1 ? 'restoring' : 'available'));
    c[1] = { ...c[1], leaseExpiresAt: lease(30_000) };
    const newer = fulls(['2024-03-01T00:00:00Z']);
    const plan = onlyVolume([...c, ...newer], { keepLast: 1 });
    assert.equal(plan.delete.length, 0);
    assert.deepEqual(plan.keep.find((k) => k.record.id === c[1].id)!.reasons, ['being restored']);
    const stale = { ...c[1], leaseExpiresAt: lease(-1) };
    const plan2 = onlyVolume([c[0], stale, ...newer], { keepLast: 1 });
    assert.deepEqual(plan2.delete.map((d) => d.record.id), [stale.id, c[0].id]);
  });

  it('failed backups go, unless keep-failed-for keeps the recent ones (and then their parents)', () => {
    const c = chain(['2024-01-01T00:00:00Z']);
    const newer = fulls(['2024-03-01T00:00:00Z']);
    const oldFail = rec({ dataTimestamp: '2024-02-01T00:00:00Z', status: 'error', failReason: 'boom', updatedAt: '2029-12-01T00:00:00Z' });
    const recentFail = rec({ dataTimestamp: '2024-02-02T00:00:00Z', parentId: c[0].id, status: 'error', failReason: 'cancelled', updatedAt: '2029-12-31T00:00:00Z' });
    const plan = onlyVolume([...c, ...newer, oldFail, recentFail], { keepLast: 1 });
    assert.deepEqual(plan.delete.map((d) => d.record.id), [recentFail.id, oldFail.id, c[0].id]);
    const plan2 = onlyVolume([...c, ...newer, oldFail, recentFail], { keepLast: 1, keepFailedFor: '7d' });
    assert.deepEqual(plan2.delete.map((d) => d.record.id), [oldFail.id]);
    assert.deepEqual(plan2.keep.find((k) => k.record.id === recentFail.id)!.reasons, ['keep-failed-for 7d']);
    assert.deepEqual(plan2.keep.find((k) => k.record.id === c[0].id)!.reasons, [`parent of ${recentFail.id}`]);
  });

  it('an unfinished deletion is finished, or given back when a kept backup still needs it', () => {
    const c = chain(['2024-01-01T00:00:00Z', '2024-01-02T00:00:00Z', '2024-01-03T00:00:00Z'], 'vol-a', (i) => (i === 1 ? 'deleting' : 'available'));
    const plan = onlyVolume(c, { keepLast: 1 });
    const middle = plan.keep.find((k) => k.record.id === c[1].id)!;
    assert.equal(middle.giveBack, true);
    assert.deepEqual(middle.reasons, [`parent of ${c[2].id}`, `in use by ${c[2].id}`]);
    const plan2 = onlyVolume([c[0], c[1]], { keepLast: 1 });
    assert.deepEqual(plan2.delete.map((d) => [d.record.id, d.reason]), [[c[1].id, 'unfinished deletion']]);
    assert.deepEqual(plan2.keep.map((k) => k.record.id), [c[0].id]);
  });

  it('backupsNeeding follows whole chains and separates stale writers', () => {
    const c = chain(['2024-01-01T00:00:00Z', '2024-01-02T00:00:00Z']);
    const live = rec({ dataTimestamp: '2024-01-03T00:00:00Z', parentId: c[1].id, status: 'creating', leaseExpiresAt: lease(10_000) });
    const stale = rec({ dataTimestamp: '2024-01-04T00:00:00Z', parentId: c[1].id, status: 'creating', leaseExpiresAt: lease(-10_000) });
    const failed = rec({ dataTimestamp: '2024-01-05T00:00:00Z', parentId: c[0].id, status: 'error' });
    const all = [...c, live, stale, failed];
    const need = backupsNeeding(all, c[0].id, NOW);
    assert.deepEqual(need.live.map((r) => r.id).sort(), [c[1].id, live.id].sort());
    assert.deepEqual(need.stale.map((r) => r.id), [stale.id]);
    assert.deepEqual(ancestorIds(new Map(all.map((r) => [r.id, r])), live).ids, [c[1].id, c[0].id]);
  });
});

describe('retention: properties over random histories', () => {
  const statuses: BackupStatus[] = ['available', 'available', 'available', 'creating', 'restoring', 'error', 'deleting'];
  const history = fc
    .array(
      fc.record({
        volume: fc.constantFrom('vol-a', 'vol-b'),
        day: fc.integer({ min: 0, max: 800 }),
        hour: fc.integer({ min: 0, max: 23 }),
        parent: fc.option(fc.nat(), { nil: null }),
        status: fc.constantFrom(...statuses),
        leaseLive: fc.boolean(),
      }),
      { maxLength: 40 },
    )
    .map((specs) => {
      const out: BackupRecord[] = [];
      for (const s of specs) {
        const t = new Date(Date.UTC(2024, 0, 1) + s.day * 86_400_000 + s.hour * 3_600_000).toISOString();
        const sameVolume = out.filter((r) => r.volumeId === s.volume);
        const parent = s.parent !== null && sameVolume.length ? sameVolume[s.parent % sameVolume.length] : null;
        const lease = s.status === 'creating' || s.status === 'restoring' ? new Date(NOW.getTime() + (s.leaseLive ? 60_000 : -60_000)).toISOString() : null;
        out.push(rec({ dataTimestamp: t, volumeId: s.volume, parentId: parent?.id ?? null, status: s.status, leaseExpiresAt: lease }));
      }
      return out;
    });
  const policy = fc.record(
    {
      keepLast: fc.integer({ min: 0, max: 5 }),
      keepDaily: fc.integer({ min: 0, max: 5 }),
      keepWeekly: fc.integer({ min: 0, max: 3 }),
      keepMonthly: fc.constantFrom(0, 2, 'unlimited' as const),
      keepWithin: fc.constantFrom('10d', '1m', '1y'),
      keepFailedFor: fc.constantFrom('1d', '1y'),
    },
    { requiredKeys: [] },
  );

  it('nothing kept loses an ancestor, deletions come children first, running operations are kept', () => {
    fc.assert(
      fc.property(history, policy, (records, p) => {
        const plan = planRetention(records, p, { now: NOW });
        const byId = new Map(records.map((r) => [r.id, r]));
        const kept = new Set(plan.volumes.flatMap((v) => v.keep.map((k) => k.record.id)));
        const deleted = plan.volumes.flatMap((v) => v.delete.map((d) => d.record.id));
        // Every record is either kept or deleted, once.
        assert.equal(kept.size + deleted.length, records.length);
        assert.equal(new Set([...kept, ...deleted]).size, records.length);
        for (const id of kept) for (const a of ancestorIds(byId, byId.get(id)!).ids) assert.ok(kept.has(a), 'a kept backup lost an ancestor');
        // A record is deleted before its parent.
        const position = new Map(deleted.map((id, i) => [id, i]));
        for (const id of deleted) {
          const parent = byId.get(id)!.parentId;
          if (parent && position.has(parent)) assert.ok(position.get(parent)! > position.get(id)!, 'parent deleted before child');
        }
        for (const r of records) {
          const running = (r.status === 'creating' || r.status === 'restoring') && Date.parse(r.leaseExpiresAt!) > NOW.getTime();
          if (running) assert.ok(kept.has(r.id), `a ${r.status} backup was planned for deletion`);
        }
      }),
      { numRuns: 300 },
    );
  });
});
