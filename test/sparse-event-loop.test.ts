/**
 * A huge sparse image is mostly chunks that need no I/O at all: a hole in the source, no entry in the
 * parent's segments, nothing to write to a new sparse target. The chunk loop must still give the event
 * loop a turn every few chunks: the record's lease is renewed by a timer (60 s TTL, renewed every 20 s),
 * Ctrl-C and cancel requests arrive as events, the progress bar is drawn between chunks. Before the fix a
 * 16 TiB image's incremental ran 50-60 s without one turn (the lease's renewal failed "no reply within
 * 60.0 s"), its verify-only restore 15 s.
 */
import { strict as assert } from 'assert';
import { promises as fs } from 'fs';
import * as path from 'path';
import { Repository, createBackup, openRepository, restoreBackup } from '../lib';
import type { ProgressEvent } from '../lib/engine/types';
import { sha256File, tempDir } from './helpers/volumes';

const KiB = 1024;
const MiB = 1024 * KiB;
// 16 Ki chunks of 64 KiB, all hole but the last bytes: thousands of chunks without any I/O.
const SIZES = { chunkSize: 64 * KiB, blockSize: 4 * KiB };
const IMAGE_SIZE = 1024 * MiB + 5000;
/** Chunks that may pass between two turns of the event loop (the engine yields every 64 per slot). */
const MAX_CHUNKS_PER_TURN = 512;

/**
 * Runs `op` with a progress listener and an immediate re-armed on every turn of the event loop; returns
 * the most chunks that were done between two turns.
 */
async function chunksPerTurn(op: (onProgress: (e: ProgressEvent) => void) => Promise<unknown>): Promise<number> {
  let done = 0;
  let atLastTurn = 0;
  let most = 0;
  let running = true;
  const turn = (): void => {
    most = Math.max(most, done - atLastTurn);
    atLastTurn = done;
    if (running) setImmediate(turn);
  };
  setImmediate(turn);
  try {
    await op((e) => {
      if (e.type === 'chunk') done = e.chunksDone;
    });
  } finally {
    running = false;
  }
  turn();
  return most;
}

describe('sparse images: the chunk loop lets the event loop run (lease renewals, Ctrl-C, cancel)', function () {
  this.timeout(300_000);
  let dir: string;
  let repo: Repository;
  let img: string;

  before(async () => {
    dir = await tempDir('sparse-event-loop');
    repo = await openRepository(path.join(dir, 'repo'), { create: true });
    img = path.join(dir, 'disk.img');
    const handle = await fs.open(img, 'w');
    try {
      await handle.truncate(IMAGE_SIZE);
      await handle.write(Buffer.from('the last bytes'), 0, 14, IMAGE_SIZE - 14);
    } finally {
      await handle.close();
    }
  });
  after(async () => {
    await repo.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('full, incremental, restore and verify-only of a 1 GiB hole do at most a few hundred chunks per turn, and restore the image', async () => {
    const sha = await sha256File(img);
    const full = await createBackup(repo, { volume: img, volumeId: 'hole', ...SIZES });
    const turns: Record<string, number> = {};
    turns.full = await chunksPerTurn((onProgress) => createBackup(repo, { volume: img, volumeId: 'hole2', ...SIZES, onProgress }));
    let incrementalId = '';
    turns.incremental = await chunksPerTurn(async (onProgress) => {
      incrementalId = (await createBackup(repo, { volume: img, volumeId: 'hole', mode: 'incremental', onProgress })).id;
    });
    const target = path.join(dir, 'restored.img');
    turns.restore = await chunksPerTurn((onProgress) => restoreBackup(repo, { backupId: incrementalId, target, onProgress }));
    assert.equal(await sha256File(target), sha);
    turns.verifyOnly = await chunksPerTurn((onProgress) => restoreBackup(repo, { backupId: full.id, verifyOnly: true, onProgress }));
    const chunks = Math.ceil(IMAGE_SIZE / SIZES.chunkSize);
    const tooMany = Object.entries(turns).filter(([, most]) => most > MAX_CHUNKS_PER_TURN);
    assert.deepEqual(tooMany, [], `chunks (of ${chunks}) done without a turn of the event loop, at most ${MAX_CHUNKS_PER_TURN} allowed: ${JSON.stringify(turns)}`);
  });
});
