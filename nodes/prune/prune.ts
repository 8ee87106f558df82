/**
 * prune: delete the backups a retention policy no longer keeps (never a backup another one still
 * needs). With dry run it only reports what it would delete.
 */
import { z } from 'zod';
import { VolumeBackupError } from '../../lib/errors';
import type { ProgressListener, Logger } from '../../lib/engine/types';
import type { Repository } from '../../lib/repository/repository';
import { formatBytes } from '../common/format';
import { operationNode } from '../common/operation-node';
import type { Node, NodeAPI, NodeDef } from '../common/red';
import { checkOptions, flag, resolveProperties } from '../common/resolve';

interface PruneOptions {
  policy: unknown;
  volumeId?: string;
  dryRun: boolean;
  signal?: AbortSignal;
  onProgress?: ProgressListener;
  log?: Logger;
}
type PruneReport = Record<string, unknown>;
type PruneFunction = (repo: Repository, options: PruneOptions) => Promise<PruneReport>;

/** The engine's prune, loaded when first used so this node still loads where it is missing. */
function loadPrune(): PruneFunction {
  let fn: unknown;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    fn = require('../../lib/engine/prune').pruneRepository;
  } catch {
    fn = undefined;
  }
  if (typeof fn !== 'function') {
    throw new VolumeBackupError('INVALID_ARGUMENT', 'prune is not available in this version of node-red-contrib-volume-backup yet: no backups were deleted');
  }
  return fn as PruneFunction;
}

const Input = z.object({
  policy: z.record(z.string(), z.unknown(), {
    error: (issue) => (issue.input === undefined ? 'is missing: give a retention policy such as {"keepDaily": 7, "keepWeekly": 4}' : 'must be an object such as {"keepDaily": 7}'),
  }),
  volumeId: z.string({ error: 'must be a volume id (text)' }).optional(),
  dryRun: flag.default(false),
});

export = function register(RED: NodeAPI): void {
  function Prune(this: Node, def: NodeDef): void {
    RED.nodes.createNode(this, def);
    const node = this;
    operationNode<PruneReport>(RED, node, def, {
      createRepository: false,
      async run(ctx) {
        const { values, from } = await resolveProperties(RED, node, def, ctx.msg, {
          policy: { setting: 'policy', msgProperty: 'policy' },
          volumeId: { setting: 'volumeId', msgProperty: 'volumeId' },
          dryRun: { setting: 'dryRun', msgProperty: 'dryRun' },
        });
        if (typeof values.policy === 'string') {
          try {
            values.policy = JSON.parse(values.policy);
          } catch {
            // left as text: the check below says what is expected
          }
        }
        const input = checkOptions(Input, values, from);
        const prune = loadPrune();
        return prune(ctx.repo, { ...input, signal: ctx.signal, onProgress: ctx.onProgress, log: ctx.log });
      },
      summary: (report) => pruneSummary(report),
    });
  }
  RED.nodes.registerType('volume-prune', Prune);
};

/** "deleted 3, 1.2 GiB" from whatever counts the report has. */
function pruneSummary(report: PruneReport): string {
  const count = (v: unknown) => (Array.isArray(v) ? v.length : typeof v === 'number' ? v : undefined);
  const deleted = count(report.deleted) ?? count(report.wouldDelete) ?? count(report.removed);
  const freed = typeof report.bytesFreed === 'number' ? `, ${formatBytes(report.bytesFreed)}` : '';
  const verb = report.dryRun ? 'would delete' : 'deleted';
  return deleted === undefined ? 'done' : `${verb} ${deleted}${freed}`;
}
