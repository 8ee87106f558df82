/**
 * `volume-backup show` without --json prints one line per record field. A record in a transient state has
 * an owner (an object): it was printed as "[object Object]", which tells the user nothing about who runs
 * the operation. Found by the linter's no-base-to-string rule (issue 18 item 5).
 */
import { strict as assert } from 'assert';
import { promises as fs } from 'fs';
import * as path from 'path';
import { cliJson, runCli } from './helpers/cli';
import { withRepository } from './helpers/repository';
import { makeImage, tempDir } from './helpers/volumes';

describe('volume-backup show (text output)', function () {
  this.timeout(120_000);
  let dir: string;

  before(async () => {
    dir = await tempDir('cli-show');
  });

  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it("prints a record's owner as its fields, not as [object Object]", async () => {
    const repo = path.join(dir, 'repo');
    const img = path.join(dir, 'vol.img');
    await makeImage(img, 1024 * 1024, 7);
    assert.equal((await runCli(['init', '--repo', repo])).code, 0);
    const made = await cliJson<{ id: string }>(['create', '--repo', repo, '--volume', img, '--volume-id', 'v', '--host', 'host-a']);
    // A delete that host-b runs right now: the record is deleting and owned by that process.
    const owner = { operation: 'delete' as const, host: 'host-b', pid: 4242, pidStart: null };
    await withRepository(repo, (r) => r.transition(made.id, ['available'], 'deleting', { owner }));

    const shown = await runCli(['show', '--repo', repo, '--backup', made.id]);
    assert.equal(shown.code, 0, shown.stderr);
    const ownerLine = shown.stdout.split('\n').find((line) => line.startsWith('owner '));
    assert.ok(ownerLine, shown.stdout);
    assert.doesNotMatch(ownerLine, /\[object Object\]/);
    assert.match(ownerLine, /"host":"host-b"/);
    assert.match(ownerLine, /"pid":4242/);
  });
});
