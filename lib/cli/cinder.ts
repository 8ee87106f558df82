/**
 * The read-only commands on a Cinder store (--repo cinder:PATH, cinder+s3://…, cinder+gs://…): list,
 * show, restore and verify, with the same output as on a repository.
 */
import { isCinderUrl } from '../cinder/url';
import { invalid } from '../errors';
import type { CommandContext, Values } from './command';
import { formatBytes, loadBackends, printJson, progressReporter, required, str } from './common';

export function isCinderRepo(values: Values): boolean {
  const repo = str(values, 'repo');
  return !!repo && isCinderUrl(repo);
}

async function withStore<T>(values: Values, ctx: CommandContext, run: (store: import('../cinder/store').CinderStore) => Promise<T>): Promise<T> {
  if (str(values, 'container')) throw invalid('--container does not apply to a Cinder store: its backups are found wherever their _metadata objects are');
  if (str(values, 'passphrase-file')) throw invalid('--passphrase-file does not apply to a Cinder store: Cinder does not encrypt its backups');
  const { openCinder } = await import('../open');
  await loadBackends(values, ctx);
  const store = await openCinder(required(values, 'repo'), { log: { info: (m) => ctx.stderr.write(`${m}\n`), warn: (m) => ctx.stderr.write(`warning: ${m}\n`) } });
  try {
    return await run(store);
  } finally {
    await store.close();
  }
}

export function cinderList(values: Values, ctx: CommandContext): Promise<void> {
  return withStore(values, ctx, async (store) => {
    const { viewOf } = await import('../cinder/view');
    const { damaged } = await store.scan();
    for (const d of damaged) ctx.stderr.write(`warning: ${d.name} is not a valid Cinder backup metadata object and is not listed: ${d.reason} (volume-backup verify reports it)\n`);
    const views = await Promise.all((await store.list(str(values, 'volume-id'))).map((b) => viewOf(store, b)));
    if (values.json) return printJson(ctx, views);
    ctx.stdout.write('ID                                    VOLUME                                KIND         SIZE      STORED  PARENT  NAME\n');
    for (const v of views) {
      ctx.stdout.write([v.id, v.volumeId, v.kind.padEnd(11), (v.size < 0 ? '?' : formatBytes(v.size)).padStart(10), formatBytes(v.storedBytes).padStart(10), v.parentId ?? '-', v.name].join('  ') + '\n');
    }
  });
}

export function cinderShow(values: Values, ctx: CommandContext): Promise<void> {
  return withStore(values, ctx, async (store) => {
    const { viewOf } = await import('../cinder/view');
    const view = await viewOf(store, await store.get(required(values, 'backup')));
    if (values.json) return printJson(ctx, view);
    for (const [k, v] of Object.entries(view)) ctx.stdout.write(`${k.padEnd(16)} ${v === null ? '-' : String(v)}\n`);
  });
}

export function cinderRestore(values: Values, ctx: CommandContext): Promise<void> {
  return withStore(values, ctx, async (store) => {
    const { restoreCinderBackup } = await import('../cinder/restore');
    const backupId = required(values, 'backup');
    const progress = progressReporter(values, ctx);
    try {
      const result = await restoreCinderBackup(store, { backupId, target: str(values, 'target'), verifyOnly: !!values['verify-only'], overwrite: !!values.overwrite, signal: ctx.signal, onProgress: progress.listener });
      progress.stop();
      if (values.json) return printJson(ctx, result);
      if (result.verifyOnly) ctx.stdout.write(`Cinder backup ${backupId} verified: every object's MD5 and ${result.blocksVerified} blocks of ${formatBytes(result.size)} match (chain of ${result.chain.length})\n`);
      else ctx.stdout.write(`Cinder backup ${backupId} restored to ${result.target}: ${formatBytes(result.size)}, every object's MD5 and every block's SHA-256 checked before it was written (chain of ${result.chain.length}), ${(result.durationMs / 1000).toFixed(1)} s\n`);
    } finally {
      progress.stop();
    }
  });
}

export function cinderVerify(values: Values, ctx: CommandContext, report: (result: import('../engine/verify').VerifyResult) => void): Promise<number> {
  return withStore(values, ctx, async (store) => {
    const { verifyCinderStore } = await import('../cinder/verify');
    const result = await verifyCinderStore(store, { backupId: str(values, 'backup'), readData: !!values['read-data'], signal: ctx.signal });
    report(result);
    return result.ok ? 0 : 1;
  });
}
