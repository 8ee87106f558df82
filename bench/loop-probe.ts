/**
 * Runs a backup and a restore in-process through the library (as the Node-RED nodes do) and reports
 * how long the event loop was ever blocked (perf_hooks.monitorEventLoopDelay): Node-RED must keep
 * serving its editor and other flows meanwhile. Usage: node loop-probe.js REPO IMAGE TARGET → JSON.
 */
import { monitorEventLoopDelay } from 'perf_hooks';
import { closeHashPool } from '../lib/engine/hash-pool';
import { createBackup, openRepository, restoreBackup } from '../lib/index';

export interface LoopReport {
  operation: string;
  wallSeconds: number;
  maxDelayMs: number;
  p99DelayMs: number;
  meanDelayMs: number;
  progressEvents: number;
  /** Time spent delivering progress: in the engine's callback, turning each event into a message as a node does. */
  progressMs: number;
}

async function probe<T>(operation: string, run: (onProgress: (event: unknown) => void) => Promise<T>): Promise<LoopReport> {
  let progressEvents = 0;
  let progressNs = 0n;
  const histogram = monitorEventLoopDelay({ resolution: 5 });
  histogram.enable();
  const started = process.hrtime.bigint();
  await run((event) => {
    const t = process.hrtime.bigint();
    progressEvents++;
    // What the nodes do with an event: a message with the event as its payload, cloned on send.
    structuredClone({ _msgid: String(progressEvents), topic: 'progress', payload: event });
    progressNs += process.hrtime.bigint() - t;
  });
  const wallSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  histogram.disable();
  return {
    operation,
    wallSeconds,
    maxDelayMs: histogram.max / 1e6,
    p99DelayMs: histogram.percentile(99) / 1e6,
    meanDelayMs: histogram.mean / 1e6,
    progressEvents,
    progressMs: Number(progressNs) / 1e6,
  };
}

async function main(): Promise<void> {
  const [repoPath, image, target] = process.argv.slice(2);
  const repo = await openRepository(repoPath, { create: true });
  try {
    const reports: LoopReport[] = [];
    // What the machine alone does to an idle event loop (other processes competing for the cores).
    reports.push(await probe('idle baseline (2 s, nothing running in this process)', () => new Promise((r) => setTimeout(r, 2000))));
    let backupId = '';
    reports.push(await probe('backup (library, in-process)', async (onProgress) => {
      backupId = (await createBackup(repo, { volume: image, volumeId: 'loop-probe', onProgress })).id;
    }));
    reports.push(await probe('restore (library, in-process)', async (onProgress) => {
      await restoreBackup(repo, { backupId, target, onProgress });
    }));
    process.stdout.write(JSON.stringify(reports) + '\n');
  } finally {
    await repo.close();
    await closeHashPool();
  }
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exitCode = 1;
});
