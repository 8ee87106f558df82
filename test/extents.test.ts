/**
 * The FIEMAP diff of changed-extent incrementals without a file system: `filefrag -v -e` output as
 * btrfs prints it, and which ranges count as changed (moved extents, holes on one side, extents whose
 * location cannot be compared).
 */
import * as assert from 'assert';
import { Extent, changedRanges, parseFilefrag } from '../lib/snapshot/extents';

const BTRFS = `Filesystem type is: 9123683e
File size of m/f is 8388608 (2048 blocks of 4096 bytes)
 ext:     logical_offset:        physical_offset: length:   expected: flags:
   0:        0..      79:       3328..      3407:     80:             shared
   1:       80..      95:      15616..     15631:     16:       3408:
   2:       96..    2047:       3424..      5375:   1952:      15632: last,shared,eof
m/f: 3 extents found
`;
const CLONE = `Filesystem type is: 9123683e
File size of m/g is 8388608 (2048 blocks of 4096 bytes)
 ext:     logical_offset:        physical_offset: length:   expected: flags:
   0:        0..    2047:       3328..      5375:   2048:             last,shared,eof
m/g: 1 extent found
`;
const K = 4096;
const ext = (logical: number, length: number, physical: number, more: Partial<Extent> = {}): Extent => ({
  logical, length, physical, encoded: false, unwritten: false, opaque: false, ...more,
});

describe('file extents (filefrag) and changed ranges', () => {
  it('parses filefrag -v -e into byte extents with their flags', () => {
    const f = parseFilefrag(BTRFS);
    assert.strictEqual(f.size, 8388608);
    assert.deepStrictEqual(f.extents.map((e) => [e.logical, e.length, e.physical]), [[0, 80 * K, 3328 * K], [80 * K, 16 * K, 15616 * K], [96 * K, 1952 * K, 3424 * K]]);
    assert.strictEqual(parseFilefrag('Filesystem type is: 58465342\nFile size of h is 1048576 (256 blocks of 4096 bytes)\nh: 0 extents found\n').extents.length, 0);
    assert.throws(() => parseFilefrag('filefrag: Operation not supported\n'), /no file size/);
  });

  it('a rewritten range is changed, however the unchanged extents are split or merged', () => {
    assert.deepStrictEqual(changedRanges(parseFilefrag(CLONE), parseFilefrag(BTRFS)), [[80 * K, 96 * K]]);
    assert.deepStrictEqual(changedRanges(parseFilefrag(BTRFS), parseFilefrag(BTRFS)), []);
  });

  it('holes on one side, unwritten and opaque extents, and moved compressed extents are changed', () => {
    const size = 64 * K;
    const before = { size, extents: [ext(0, 16 * K, 1000 * K), ext(32 * K, 16 * K, 2000 * K, { encoded: true })] };
    // Block 16-32 K: a hole in both (equal); 48-64 K: hole → data; 0-8 K the same; 8-16 K now opaque.
    const after = {
      size,
      extents: [ext(0, 8 * K, 1000 * K), ext(8 * K, 8 * K, 1008 * K, { opaque: true }), ext(32 * K, 16 * K, 2000 * K, { encoded: true }), ext(48 * K, 16 * K, 3000 * K, { unwritten: true })],
    };
    assert.deepStrictEqual(changedRanges(before, after), [[8 * K, 16 * K], [48 * K, 64 * K]]);
    const sameCompressed = { size, extents: [ext(0, 16 * K, 1000 * K), ext(32 * K, 16 * K, 2000 * K, { encoded: true })] };
    assert.deepStrictEqual(changedRanges(before, sameCompressed), []);
    // A compressed extent's physical address is the whole extent's: a part of it at the same offset is not the same bytes.
    const partOfCompressed = { size, extents: [ext(0, 16 * K, 1000 * K), ext(40 * K, 8 * K, 2008 * K, { encoded: true })] };
    assert.deepStrictEqual(changedRanges(before, partOfCompressed), [[32 * K, 48 * K]]);
  });
});
