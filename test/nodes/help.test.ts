/**
 * The help a flow author reads in the editor's sidebar: every operation node documents both outputs,
 * where its properties come from, and that the driver-config can silence the progress output.
 */
import * as assert from 'assert';
import { readFileSync } from 'fs';
import * as path from 'path';

const ROOT = path.join(__dirname, '..', '..', '..');
const OPERATION_NODES = ['backup-create', 'backup-incremental', 'snapshot-backup', 'restore', 'prune'];

function help(name: string): string {
  const html = readFileSync(path.join(ROOT, 'nodes', name, `${name}.html`), 'utf8');
  const block = /<script type="text\/html" data-help-name="volume-[a-z-]+">([\s\S]*?)<\/script>/.exec(html);
  assert.ok(block, `${name}.html has a help block`);
  return block[1];
}

describe('node help texts', () => {
  for (const name of OPERATION_NODES) {
    it(`${name}: both outputs, property precedence, progress off in the driver-config`, () => {
      const text = help(name);
      const ports = /<ol class="node-ports">([\s\S]*?)<\/ol>/.exec(text);
      assert.ok(ports, 'the outputs are listed as node-ports');
      assert.strictEqual(ports[1].match(/<li>/g)?.length, 2, 'two outputs are described');
      assert.match(ports[1], /<li>Result/);
      assert.match(ports[1], /<li>Progress/);
      assert.match(ports[1], /Off when the driver-config's <i>progress messages<\/i> is unticked/);
      assert.match(text, /precedence/i);
      assert.match(text, /message property of the same name|message's property of the same name/);
    });
  }

  it('documents the choices a user has to know about', () => {
    assert.match(help('restore'), /<i>list<\/i> needs neither a backup id nor a target/);
    // Issue 16's settings: the re-read interval, and a restore onto a base (which needs no Overwrite).
    assert.match(help('snapshot-backup'), /<dt class="optional">fullReadEvery[\s\S]*default 30; 0: never/);
    assert.match(help('restore'), /<dt class="optional">baseBackupId[\s\S]*Needs no <i>Overwrite<\/i>/);
    assert.match(help('restore'), /<dt class="optional">trustBase/);
    for (const name of ['backup-incremental', 'snapshot-backup']) {
      assert.match(help(name), /full backup when there is no parent yet<\/i> is ticked by default/i, name);
      assert.match(help(name), /chunk and block sizes apply to full backups only/, name);
    }
    assert.match(help('driver-config'), /Incremental and differential backups inherit their parent's sizes/);
    assert.match(help('driver-config'), /Conditional writes/);
    assert.match(help('driver-config'), /Clean up this host's leftovers at start/);
    assert.match(help('driver-config'), /Records of other hosts are never touched/);
    for (const name of ['backup-create', 'backup-incremental', 'snapshot-backup']) {
      assert.match(help(name), /<dt class="optional">lockWait/, name);
      assert.match(help(name), /with 0, the default, it fails at once with an error \(code <code>BUSY<\/code>\)/, name);
      assert.match(help(name), /waiting: volume busy/, name);
    }
  });
});
