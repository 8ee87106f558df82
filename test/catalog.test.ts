/**
 * Big catalogs (issue 15 part 4): on a generated catalog of hourly backups over many volumes
 * (bench/catalog.ts), list, prune --dry-run, verify and parent choice give the right answers, and the
 * sidebar's pages cover every backup once. No timing here: the figures are the bench's (`npm run bench`
 * runs the 10,000-record catalog). Sizes: CATALOG_TEST_VOLUMES × CATALOG_TEST_PER_VOLUME (default 10 × 48
 * on posix; the S3 test server gets 3 volumes, as each of its requests costs more).
 */
import { strict as assert } from 'assert';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { CATALOG_POLICY, GeneratedCatalog, catalogShape, catalogVolumeId, generateCatalog, writeTinyVolume } from '../bench/catalog';
import { openRepository } from '../lib/open';
import type { BackupRecord } from '../lib/repository/records';
import { sidebarPage } from '../plugins/backups-sidebar/view';
import { cliEnv, cliJson, runCli } from './helpers/cli';
import { S3_TEST_CREDENTIALS, S3TestServer, startS3Server } from './servers/s3-server';

const PER_VOLUME = Number(process.env.CATALOG_TEST_PER_VOLUME ?? 48);

/**
 * Which hours of a volume CATALOG_POLICY deletes, worked out by hand for hourly backups starting on a
 * Monday at 00:00 UTC, within one ISO week and one month (perVolume ≤ 168): keep-hourly keeps the newest
 * 24; keep-daily the newest of each day; keep-daily, -weekly and -monthly, having counts left, the oldest
 * (hour 0) too; every kept backup keeps its ancestors.
 */
function expectedDeletedHours(perVolume: number): number[] {
  assert.ok(perVolume <= 168, 'the model covers one ISO week');
  const pinned = new Set<number>([0, perVolume - 1]);
  for (let h = Math.max(0, perVolume - 24); h < perVolume; h++) pinned.add(h);
  for (let h = 23; h < perVolume; h += 24) pinned.add(h);
  const kept = new Set<number>();
  for (const h of pinned) for (let a: number | null = h; a !== null; a = catalogShape(a).parentHour) kept.add(a);
  return Array.from({ length: perVolume }, (_, h) => h).filter((h) => !kept.has(h));
}

interface Target {
  url: string;
  env: NodeJS.ProcessEnv;
  volumes: number;
}

function catalogSuite(name: string, setup: () => Promise<{ target: Target; stop(): Promise<void> }>): void {
  describe(`a big catalog (${name})`, function () {
    this.timeout(600_000);
    let dir: string;
    let image: string;
    let target: Target;
    let stop: () => Promise<void>;
    let catalog: GeneratedCatalog;
    const cli = <T>(args: string[]) => cliJson<T>([...args, '--repo', target.url], { env: cliEnv(target.env), timeoutMs: 300_000 });

    before(async function () {
      dir = await fs.mkdtemp(path.join(os.tmpdir(), 'vb-catalog-'));
      image = await writeTinyVolume(path.join(dir, 'tiny.img'));
      ({ target, stop } = await setup());
      const templatesUrl = target.url.replace(/catalog(?=[?]|$)/, 'templates');
      const make = (extra: string[]) =>
        cliJson<BackupRecord>(['create', '--repo', templatesUrl, '--volume', image, '--volume-id', 'template', '--progress', 'none', ...extra], { env: cliEnv(target.env) });
      const full = await make([]);
      const incremental = await make(['--incremental']);
      const saved = { ...process.env };
      Object.assign(process.env, target.env);
      const templates = await openRepository(templatesUrl);
      const repo = await openRepository(target.url, { create: true });
      try {
        catalog = await generateCatalog(repo, { repo: templates, full, incremental }, { volumes: target.volumes, perVolume: PER_VOLUME });
      } finally {
        await repo.close();
        await templates.close();
        process.env = saved;
      }
    });

    after(async function () {
      await stop?.();
      if (dir) await fs.rm(dir, { recursive: true, force: true });
    });

    it('lists every record, and one volume\'s alone', async function () {
      const all = await cli<BackupRecord[]>(['list']);
      assert.equal(all.length, target.volumes * PER_VOLUME);
      assert.deepEqual(new Set(all.map((r) => r.id)), new Set(catalog.ids.flat()));
      const volumeId = catalogVolumeId({ volumes: target.volumes, perVolume: PER_VOLUME }, target.volumes - 1);
      const one = await cli<BackupRecord[]>(['list', '--volume-id', volumeId]);
      assert.deepEqual(one.map((r) => r.id), catalog.ids[target.volumes - 1], 'the volume\'s backups, oldest first');
      assert.ok(one.every((r) => r.volumeId === volumeId));
    });

    it('plans to prune exactly the backups the policy does not keep, on every volume', async function () {
      const report = await cli<{ dryRun: boolean; backupsDeleted: number; volumes: { volumeId: string; deleted: { id: string }[]; kept: { id: string }[] }[] }>(['prune', '--dry-run', ...CATALOG_POLICY]);
      const hours = expectedDeletedHours(PER_VOLUME);
      assert.ok(hours.length > 0 && hours.length < PER_VOLUME, 'the catalog has backups to keep and to delete');
      assert.equal(report.dryRun, true);
      assert.equal(report.backupsDeleted, target.volumes * hours.length);
      assert.equal(report.volumes.length, target.volumes);
      report.volumes.forEach((v, i) => {
        assert.equal(v.volumeId, catalog.volumeIds[i]);
        assert.deepEqual(new Set(v.deleted.map((d) => d.id)), new Set(hours.map((h) => catalog.ids[i][h])));
        assert.equal(v.kept.length + v.deleted.length, PER_VOLUME);
      });
      assert.equal((await cli<unknown[]>(['list'])).length, target.volumes * PER_VOLUME, 'a dry run deletes nothing');
    });

    it('verifies every backup without --read-data', async function () {
      const ok = await cli<{ ok: boolean; recordsChecked: number; backupsVerified: number; problems: unknown[] }>(['verify']);
      assert.deepEqual(ok.problems, []);
      assert.equal(ok.ok, true);
      assert.equal(ok.recordsChecked, target.volumes * PER_VOLUME);
      assert.equal(ok.backupsVerified, target.volumes * PER_VOLUME);
    });

    it('chooses the newest backup of the volume as the parent of an incremental', async function () {
      const volumeId = catalog.volumeIds[0];
      const created = await cli<BackupRecord>(['create', '--volume', image, '--volume-id', volumeId, '--incremental', '--progress', 'none']);
      assert.equal(created.kind, 'incremental');
      assert.equal(created.parentId, catalog.ids[0][PER_VOLUME - 1]);
      const shown = await cli<BackupRecord>(['show', '--backup', created.id]);
      assert.equal(shown.parentId, created.parentId);
      const removed = await runCli(['delete', '--backup', created.id, '--repo', target.url], { env: cliEnv(target.env) });
      assert.equal(removed.code, 0, removed.stderr);
    });

    it('gives the sidebar every backup once, a page at a time, in its order', async function () {
      const saved = { ...process.env };
      Object.assign(process.env, target.env);
      const repo = await openRepository(target.url);
      try {
        const records = await repo.listRecords();
        const size = 37;
        const first = sidebarPage(records, new Date(), { page: 0, size });
        assert.equal(first.page.total, records.length);
        assert.equal(first.page.pages, Math.ceil(records.length / size));
        const seen: string[] = [];
        for (let page = 0; page < first.page.pages; page++) {
          const listing = sidebarPage(records, new Date(), { page, size });
          const ids = listing.volumes.flatMap((v) => v.chains.flatMap((c) => c.backups.map((b) => b.id)));
          assert.equal(ids.length, page < first.page.pages - 1 ? size : records.length - size * page);
          for (const v of listing.volumes) assert.equal(v.backupCount, PER_VOLUME, 'volume totals stay whole');
          seen.push(...ids);
        }
        assert.equal(seen.length, records.length);
        assert.deepEqual(new Set(seen), new Set(records.map((r) => r.id)));
        assert.equal(sidebarPage(records, new Date(), { page: 10_000, size }).page.page, first.page.pages - 1, 'a page past the end is the last');
      } finally {
        await repo.close();
        process.env = saved;
      }
    });
  });
}

catalogSuite('posix', async () => {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'vb-catalog-posix-'));
  return {
    target: { url: path.join(root, 'catalog'), env: {}, volumes: Number(process.env.CATALOG_TEST_VOLUMES ?? 10) },
    stop: () => fs.rm(root, { recursive: true, force: true }),
  };
});

catalogSuite('S3 test server', async () => {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'vb-catalog-s3-'));
  const server: S3TestServer = await startS3Server({ dir: root });
  return {
    target: {
      url: `s3://catalog/catalog?endpoint=${server.endpoint}&forcePathStyle=true&checksums=when_required`,
      env: { AWS_ACCESS_KEY_ID: S3_TEST_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: S3_TEST_CREDENTIALS.secretAccessKey },
      volumes: Number(process.env.CATALOG_TEST_S3_VOLUMES ?? 3),
    },
    stop: async () => {
      await server.stop();
      await fs.rm(root, { recursive: true, force: true });
    },
  };
});
