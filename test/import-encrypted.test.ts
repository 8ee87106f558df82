/**
 * Export/import between encrypted repositories, with the real CLI. The objects are sealed with the source
 * repository's key: a repository made by `init --encrypt` has another key and cannot open them. The import
 * must say so (exit 2, nothing imported), not report intact objects as damaged; a repository made from a
 * copy of the source's repository.json (the same key) imports the chain, and it restores byte-identically.
 */
import { strict as assert } from 'assert';
import { promises as fs } from 'fs';
import * as path from 'path';
import { CliResult, cliEnv, cliJson, runCli } from './helpers/cli';
import { makeImage, sha256File, tempDir } from './helpers/volumes';

const env = cliEnv({ VOLUME_BACKUP_PASSPHRASE: 'import between encrypted repositories' });

describe('import into an encrypted repository (CLI)', function () {
  this.timeout(120_000);
  let dir: string;
  let source: string;
  let img: string;
  const ids: string[] = [];
  const shas: string[] = [];

  before(async () => {
    dir = await tempDir('import-encrypted');
    source = path.join(dir, 'source');
    img = path.join(dir, 'disk.img');
    await makeImage(img, 3 * 1024 * 1024 + 4097);
    assert.equal((await runCli(['init', '--repo', source, '--encrypt'], { env })).code, 0);
    for (const mode of [[], ['--incremental']]) {
      if (mode.length) {
        const handle = await fs.open(img, 'r+');
        await handle.write(Buffer.alloc(100_000), 0, 100_000, 1_000_000); // zeros where there was data
        await handle.close();
      }
      const record = await cliJson<{ id: string }>(['create', '--repo', source, '--volume', img, '--volume-id', 'vol', '--chunk-size', '1M', '--block-size', '8K', '--progress', 'none', ...mode], { env });
      ids.push(record.id);
      shas.push(await sha256File(img));
    }
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  async function importChain(repo: string): Promise<CliResult[]> {
    await fs.cp(path.join(source, 'volume_vol'), path.join(repo, 'volume_vol'), { recursive: true });
    const results: CliResult[] = [];
    for (const id of ids) {
      const exported = await runCli(['export', '--repo', source, '--backup', id], { env });
      assert.equal(exported.code, 0, exported.stderr);
      results.push(await runCli(['import', '--repo', repo], { env, input: exported.stdout }));
    }
    return results;
  }

  it('a repository with another key refuses the import (exit 2) and says why; nothing is imported', async () => {
    const other = path.join(dir, 'other');
    assert.equal((await runCli(['init', '--repo', other, '--encrypt'], { env })).code, 0);
    const [first] = await importChain(other);
    assert.equal(first.code, 2, first.stderr);
    assert.match(first.stderr, /another repository's key/);
    assert.match(first.stderr, /repository\.json/);
    assert.doesNotMatch(first.stderr, /altered or truncated/);
    assert.deepEqual(await cliJson(['list', '--repo', other], { env }), []);
  });

  it('a repository with the same key (a copy of repository.json) imports the chain, which restores byte-identically', async () => {
    const copy = path.join(dir, 'copy');
    await fs.mkdir(copy);
    await fs.copyFile(path.join(source, 'repository.json'), path.join(copy, 'repository.json'));
    for (const r of await importChain(copy)) assert.equal(r.code, 0, r.stderr);
    for (const [k, id] of ids.entries()) {
      const target = path.join(dir, `restored-${k}.img`);
      const r = await runCli(['restore', '--repo', copy, '--backup', id, '--target', target, '--progress', 'none'], { env });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await sha256File(target), shas[k]);
    }
  });
});
