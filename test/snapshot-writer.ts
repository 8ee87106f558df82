/**
 * A writer process for the snapshot tests: keeps rewriting "stamp" blocks spread over a volume file, one
 * pass after another, each pass stamping every block with the next generation number. At any instant the
 * file holds at most two generations (the pass in progress and the one before), so an image read at one
 * instant shows generations g-1..g, while a read spread over time shows many. Every 4 KiB stamp block
 * repeats its (generation, index) record, so a block torn inside shows too.
 *
 *   node snapshot-writer.js FILE STRIDE COUNT PAUSE_MS
 * Prints "ready" after the first pass; runs until killed.
 */
import { ChildProcess, spawn } from 'child_process';
import { closeSync, openSync, readSync, writeSync } from 'fs';

export const STAMP_SIZE = 4096;
const RECORD = 16;
const MAGIC = Buffer.from('GENSTAMP');

export function stampBlock(gen: number, index: number): Buffer {
  const block = Buffer.alloc(STAMP_SIZE);
  for (let off = 0; off < STAMP_SIZE; off += RECORD) {
    MAGIC.copy(block, off);
    block.writeUInt32LE(gen, off + 8);
    block.writeUInt32LE(index, off + 12);
  }
  return block;
}

/** The generation in a stamp block; throws if the block is not one whole stamp (torn inside, or never written). */
export function readStamp(block: Buffer, index: number): number {
  const gen = block.readUInt32LE(8);
  for (let off = 0; off < STAMP_SIZE; off += RECORD) {
    if (!block.subarray(off, off + 8).equals(MAGIC) || block.readUInt32LE(off + 8) !== gen || block.readUInt32LE(off + 12) !== index) {
      throw new Error(`stamp block ${index} is not a whole stamp (torn inside, or never written)`);
    }
  }
  return gen;
}

export interface StampLayout {
  stride: number;
  count: number;
}

/** The generation of every stamp block of an image file. */
export function readGenerations(file: string, layout: StampLayout): number[] {
  const fd = openSync(file, 'r');
  try {
    const block = Buffer.alloc(STAMP_SIZE);
    return Array.from({ length: layout.count }, (_, k) => {
      readSync(fd, block, 0, STAMP_SIZE, k * layout.stride);
      return readStamp(block, k);
    });
  } finally {
    closeSync(fd);
  }
}

export interface Writer {
  process: ChildProcess;
  stop(): Promise<void>;
}

export async function startWriter(file: string, layout: StampLayout, pauseMs: number): Promise<Writer> {
  const child = spawn(process.execPath, [__filename, file, String(layout.stride), String(layout.count), String(pauseMs)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`the writer exited with code ${code} before it was ready`)));
    child.stdout!.once('data', () => resolve());
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    process: child,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/**
 * Blocks (synchronously, on purpose) until the writer has made `passes` more passes: called from a
 * backup's progress listener, it guarantees the volume changed between the reads of earlier and later
 * chunks, so a backup of the live volume is torn for sure.
 */
export function waitForPasses(file: string, layout: StampLayout, passes: number, timeoutMs = 10_000): void {
  const deadline = Date.now() + timeoutMs;
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  // The live file, read while the writer writes it: a read can race a write and see a stamp half-written.
  const firstGeneration = (): number => {
    for (;;) {
      try {
        return readGenerations(file, { ...layout, count: 1 })[0];
      } catch {
        if (Date.now() > deadline) throw new Error(`stamp 0 of ${file} read torn until ${timeoutMs} ms passed`);
      }
    }
  };
  const start = firstGeneration();
  while (firstGeneration() < start + passes) {
    if (Date.now() > deadline) throw new Error(`the writer made no ${passes} passes in ${timeoutMs} ms`);
    Atomics.wait(sleeper, 0, 0, 1);
  }
}

function main(): void {
  const [file, stride, count, pauseMs] = process.argv.slice(2);
  const layout = { stride: Number(stride), count: Number(count) };
  const fd = openSync(file, 'r+');
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  // No SIGTERM handler: this loop never yields to the event loop, so the default action (exit) must apply.
  for (let gen = 1; ; gen++) {
    for (let k = 0; k < layout.count; k++) writeSync(fd, stampBlock(gen, k), 0, STAMP_SIZE, k * layout.stride);
    if (gen === 1) process.stdout.write('ready\n');
    Atomics.wait(sleeper, 0, 0, Number(pauseMs));
  }
}

if (require.main === module) main();
