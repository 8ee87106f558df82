/**
 * Operations started from the sidebar wait for a slot of their driver-config's limiter (the one the
 * nodes share), can be cancelled while they wait, and report every state they pass through. The slot
 * is held by the test itself, so nothing depends on timing.
 */
import * as assert from 'assert';
import { promises as fs } from 'fs';
import { openRepository } from '../lib/open';
import type { Repository } from '../lib/repository/repository';
import { Limiter } from '../nodes/common/limiter';
import type { RepositoryConfigNode } from '../nodes/common/repository-config';
import { OperationView, Operations } from '../plugins/backups-sidebar/operations';
import { tempDir } from './helpers/volumes';
import { SidebarFixture, makeSidebarRepository } from './browser/sidebar-repository';

describe('Backups sidebar: operations and the shared limiter', function () {
  this.timeout(30_000);
  let dir: string;
  let fixture: SidebarFixture;
  let repo: Repository;

  before(async () => {
    dir = await tempDir('sidebar-ops');
    fixture = await makeSidebarRepository(dir);
    repo = await openRepository({ backend: 'posix', path: fixture.repoDir }, { host: 'ops-test' });
  });

  after(async () => {
    await repo?.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  function setup(limit: number) {
    const published: OperationView[] = [];
    const operations = new Operations((view) => published.push(JSON.parse(JSON.stringify(view)) as OperationView));
    const limiter = new Limiter(limit);
    const config = { limiter, getRepository: async () => repo } as unknown as RepositoryConfigNode;
    return { published, operations, limiter, config };
  }

  it('waits while the nodes hold every slot, then runs; reports queued, running, progress and done', async () => {
    const { published, operations, limiter, config } = setup(1);
    const release = await limiter.acquire(); // a node's backup is running
    const started = operations.start('cfg', config, { action: 'verify', backupId: fixture.backups.dbIncr2a.id });
    await new Promise((r) => setTimeout(r, 50));
    assert.strictEqual(operations.get(started.id)!.state, 'queued');
    assert.strictEqual(limiter.queued, 1);
    release();
    const done = await operations.wait(started.id);
    assert.strictEqual(done.state, 'done', JSON.stringify(done.error));
    assert.deepStrictEqual((done.result as { chain: string[] }).chain, [fixture.backups.dbFull2.id, fixture.backups.dbIncr2a.id]);
    const states = published.map((v) => v.state);
    assert.strictEqual(states[0], 'queued');
    assert.strictEqual(states[1], 'running');
    assert.strictEqual(states[states.length - 1], 'done');
    assert.ok(published.some((v) => v.state === 'running' && v.progress && v.progress.bytesDone > 0), 'progress was published');
    assert.strictEqual(limiter.active, 0, 'the slot was given back');
  });

  it('cancels an operation still waiting for a slot: it never runs and the slot is not taken', async () => {
    const { operations, limiter, config } = setup(1);
    const release = await limiter.acquire();
    const target = `${dir}/never-written.img`;
    const waiting = operations.start('cfg', config, { action: 'restore', backupId: fixture.backups.dbIncr1a.id, target, overwrite: false });
    assert.strictEqual(operations.cancel(waiting.id), true);
    const ended = await operations.wait(waiting.id);
    assert.strictEqual(ended.state, 'cancelled');
    assert.strictEqual(ended.startedAt, null);
    assert.strictEqual(ended.error?.code, 'CANCELLED');
    assert.match(ended.error?.message ?? '', /stopped from the Backups sidebar/);
    await assert.rejects(fs.stat(target), /ENOENT/);
    assert.strictEqual(limiter.queued, 0);
    release();
    assert.strictEqual(operations.cancel(waiting.id), false, 'a finished operation cannot be cancelled again');
  });

  it('reports an engine refusal as a failed operation with its code and details', async () => {
    const { operations, config } = setup(2);
    const op = operations.start('cfg', config, { action: 'delete', backupId: fixture.backups.webFull.id });
    const ended = await operations.wait(op.id);
    assert.strictEqual(ended.state, 'failed');
    assert.strictEqual(ended.error?.code, 'HAS_DEPENDENTS');
    assert.deepStrictEqual(ended.error?.details?.dependents, [fixture.backups.webIncr.id]);
    assert.ok(await repo.getRecord(fixture.backups.webFull.id), 'still there');
  });
});
