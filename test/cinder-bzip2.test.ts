/**
 * The TypeScript bzip2 decoder Cinder's bz2 objects go through (lib/cinder/bzip2.ts), against what
 * Python's bz2 module (libbz2, as Cinder uses it) writes: every kind of data decodes to the same bytes,
 * and damage is an error, never other bytes.
 */
import { strict as assert } from 'assert';
import { execFileSync } from 'child_process';
import { bunzip2 } from '../lib/cinder/bzip2';
import { CINDER_PYTHON } from './helpers/cinder';
import { Prng, textRegion } from './helpers/volumes';

function pythonBz2(data: Buffer, level = 9): Buffer {
  return execFileSync(CINDER_PYTHON, ['-c', `import bz2,sys; sys.stdout.buffer.write(bz2.compress(sys.stdin.buffer.read(), ${level}))`], { input: data, maxBuffer: 64 * 1024 * 1024 });
}

describe('bzip2 decoder (Cinder bz2 objects)', function () {
  this.timeout(120_000);
  const prng = new Prng(5);
  const cases: [string, Buffer, number?][] = [
    ['empty', Buffer.alloc(0)],
    ['one byte', Buffer.from('x')],
    ['zeros (long runs: run-length codes past 255)', Buffer.alloc(700_000)],
    ['random', prng.fill(Buffer.alloc(300_000))],
    ['text', textRegion(prng, 500_000)],
    ['several 100k blocks at level 1', Buffer.concat([textRegion(prng, 250_000), prng.fill(Buffer.alloc(100_000)), Buffer.alloc(60_000, 0xab)]), 1],
    ['every byte value, runs of 1 to 9', Buffer.from(Array.from({ length: 256 * 45 }, (_, i) => Math.floor(i / 45) & 0xff))],
  ];
  for (const [label, data, level] of cases) {
    it(`decodes ${label} to the same bytes`, () => {
      assert.ok(bunzip2(pythonBz2(data, level)).equals(data));
    });
  }

  it('decodes concatenated streams', () => {
    const a = textRegion(prng, 50_000);
    const b = prng.fill(Buffer.alloc(20_000));
    assert.ok(bunzip2(Buffer.concat([pythonBz2(a), pythonBz2(b)])).equals(Buffer.concat([a, b])));
  });

  it('fails on a flipped bit, a truncated stream and data that is not bzip2', () => {
    const packed = pythonBz2(textRegion(prng, 200_000));
    for (const at of [20, Math.floor(packed.length / 2), packed.length - 12]) {
      const bad = Buffer.from(packed);
      bad[at] ^= 0x10;
      assert.throws(() => bunzip2(bad), /bzip2/, `flipped byte at ${at}`);
    }
    assert.throws(() => bunzip2(packed.subarray(0, packed.length - 5)), /bzip2/);
    assert.throws(() => bunzip2(Buffer.from('not bzip2 at all')), /not bzip2 data/);
  });
});
