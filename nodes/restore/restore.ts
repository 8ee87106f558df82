/**
 * restore: write a backup (its whole chain, full first) to a file or block device, or read and check it
 * without writing (verify), or list the repository's backups (for dashboards and HTTP endpoints).
 * Without a backup id, the newest available backup of msg.volumeId (or of the volume at msg.volume) is used.
 */
import { z } from 'zod';
import { restoreBackup } from '../../lib/engine/restore';
import type { RestoreOptions, RestoreResult } from '../../lib/engine/types';
import { VolumeBackupError, invalid } from '../../lib/errors';
import { findParent, listBackups } from '../../lib/repository/catalog';
import { volumeIdForPath } from '../../lib/repository/names';
import type { BackupRecord } from '../../lib/repository/records';
import { formatBytes, sizeAndTime } from '../common/format';
import { OperationContext, registerOperationNode } from '../common/operation-node';
import type { NodeAPI, NodeMessage } from '../common/red';
import { checkOptions, flag, resolveProperties, sameNamed } from '../common/resolve';

const Input = z.object({
  action: z.enum(['restore', 'verify', 'list'], { error: 'must be "restore", "verify" or "list"' }).default('restore'),
  backupId: z.string({ error: 'must be a backup id (text)' }).optional(),
  volumeId: z.string({ error: 'must be a volume id (text)' }).optional(),
  volume: z.string({ error: 'must be the path of a volume (text)' }).optional(),
  target: z.string({ error: 'must be a path (text)' }).optional(),
  verifyOnly: flag.optional(),
  overwrite: flag.optional(),
  baseBackupId: z.string({ error: 'must be a backup id (text)' }).optional(),
  trustBase: flag.optional(),
});

type Result = RestoreResult | BackupRecord[];

interface Request {
  input: z.infer<typeof Input>;
  volumeId: string | undefined;
  action: z.infer<typeof Input>['action'];
  from: Record<string, string>;
}

/**
 * The engine's options for a restore or a verify, from a repository or a Cinder store alike: without a
 * backup id, `newestOf` gives the volume's newest backup in `where`.
 */
async function restoreOptions(request: Request, ctx: Pick<OperationContext, 'signal' | 'onProgress' | 'log'>, newestOf: (volumeId: string) => Promise<string | undefined>, where: string): Promise<RestoreOptions> {
  const { input, volumeId, action, from } = request;
  let backupId = input.backupId;
  if (!backupId) {
    if (!volumeId) throw invalid(`invalid input: give the backup to ${action} (msg.backupId), or a volume id (msg.volumeId) or path (msg.volume) to use its newest backup`);
    backupId = await newestOf(volumeId);
    if (!backupId) throw new VolumeBackupError('NOT_FOUND', `volume ${volumeId} has no available backup in ${where}`);
  }
  if (action === 'restore' && !input.target) {
    throw invalid(`invalid input: target (from ${from.target}) is missing: give the file or block device to restore to, or choose "verify"`);
  }
  // A base names what the target already holds: it applies to a restore only (as the target does).
  const baseId = action === 'restore' ? input.baseBackupId : undefined;
  return {
    backupId,
    target: action === 'restore' ? input.target : undefined,
    verifyOnly: action === 'verify',
    // As the CLI's --base: naming the target's content is consent to write over it (lib/engine/restore.ts).
    overwrite: input.overwrite === true,
    ...(baseId ? { baseId, trustBase: input.trustBase === true } : {}),
    signal: ctx.signal,
    onProgress: ctx.onProgress,
    log: ctx.log,
  };
}

export = function register(RED: NodeAPI): void {
  registerOperationNode<Result>(RED, 'volume-restore', (node, def) => {
    const readInput = async (msg: NodeMessage) => {
      const { values, from } = await resolveProperties(RED, node, def, msg, sameNamed('action', 'backupId', 'volumeId', 'volume', 'target', 'verifyOnly', 'baseBackupId'));
      // An existing target is written over only when the node's checkbox or msg.overwrite says so;
      // likewise a base is trusted without sampling only when the node's checkbox or msg.trustBase says so.
      const ticked = (key: string) => (def[key] === true || def[key] === 'true' ? true : (msg[key] ?? undefined));
      const input = checkOptions(Input, { ...values, overwrite: ticked('overwrite'), trustBase: ticked('trustBase') }, { ...from, overwrite: 'msg.overwrite', trustBase: 'msg.trustBase' });
      // A volume's path names it as well as its id does (the id backups of that path got).
      const volumeId = input.volumeId ?? (input.volume ? volumeIdForPath(input.volume) : undefined);
      const action = input.verifyOnly === true && input.action === 'restore' ? 'verify' : input.action;
      return { input, volumeId, action, from };
    };
    return {
      createRepository: false,
      async run(ctx) {
        const request = await readInput(ctx.msg);
        if (request.action === 'list') return listBackups(ctx.repo, { volumeId: request.volumeId });
        const newestOf = async (volumeId: string) => findParent(await listBackups(ctx.repo, { volumeId }), volumeId, 'incremental')?.id;
        return restoreBackup(ctx.repo, await restoreOptions(request, ctx, newestOf, ctx.repo.location));
      },
      // A Cinder store (read-only): the same actions, through lib/cinder.
      async runCinder(ctx) {
        const request = await readInput(ctx.msg);
        if (request.action === 'restore' && request.input.baseBackupId) {
          throw invalid(`a base backup (from ${request.from.baseBackupId}) works with this project's repositories, not with a Cinder store: restore without one`);
        }
        const { cinderRecords } = await import('../../lib/cinder/view');
        if (request.action === 'list') return cinderRecords(ctx.store, request.volumeId);
        const newestOf = async (volumeId: string) => (await ctx.store.list(volumeId)).pop()?.id;
        const { restoreCinderBackup } = await import('../../lib/cinder/restore');
        return restoreCinderBackup(ctx.store, await restoreOptions(request, ctx, newestOf, ctx.store.location));
      },
      summary: (result, ms) => {
        if (Array.isArray(result)) return `${result.length} backup${result.length === 1 ? '' : 's'}`;
        if (result.verifyOnly) return sizeAndTime(result.bytesVerified, 'verified', ms);
        // On a base, only the blocks that differ were written: "3 MiB written (on base), 1.2 s".
        const written = result.base ? sizeAndTime(result.bytesWritten, 'written (on base)', ms) : sizeAndTime(result.size, 'written', ms);
        return written + (result.bytesLeftPastEnd > 0 ? `, ${formatBytes(result.bytesLeftPastEnd)} past the end untouched` : '');
      },
    };
  });
};
