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
}

async function probe<T>(operation: string, run: (onProgress: () => void) => Promise<T>): Promise<LoopReport> {
  let progressEvents = 0;
  const histogram = monitorEventLoopDelay({ resolution: 5 });
  histogram.enable();
  const started = process.hrtime.bigint();
  await run(() => { progressEvents++; });
  const wallSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  histogram.disable();
  return {
    operation,
    wallSeconds,
    maxDelayMs: histogram.max / 1e6,
    p99DelayMs: histogram.percentile(99) / 1e6,
    meanDelayMs: histogram.mean / 1e6,
    progressEvents,
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
