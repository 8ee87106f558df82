/**
 * prune: delete the backups a retention policy no longer keeps (never a backup another one still
 * needs), and objects no record covers once they have been seen so for a day. With dry run it only
 * reports what it would delete.
 */
import { z } from 'zod';
import { PruneReport, pruneRepository } from '../../lib/engine/prune';
import { formatBytes } from '../common/format';
import { registerOperationNode } from '../common/operation-node';
import type { NodeAPI } from '../common/red';
import { checkOptions, flag, resolveProperties, sameNamed } from '../common/resolve';

const Input = z.object({
  policy: z.record(z.string(), z.unknown(), {
    error: (issue) => (issue.input === undefined ? 'is missing: give a retention policy such as {"keepDaily": 7, "keepWeekly": 4}' : 'must be an object such as {"keepDaily": 7}'),
  }),
  volumeId: z.string({ error: 'must be a volume id (text)' }).optional(),
  dryRun: flag.default(false),
});

export = function register(RED: NodeAPI): void {
  registerOperationNode<PruneReport>(RED, 'volume-prune', (node, def) => ({
    createRepository: false,
    async run(ctx) {
      const { values, from } = await resolveProperties(RED, node, def, ctx.msg, sameNamed('policy', 'volumeId', 'dryRun'));
      if (typeof values.policy === 'string') {
        try {
          values.policy = JSON.parse(values.policy);
        } catch {
          // left as text: the check below says what is expected
        }
      }
      const input = checkOptions(Input, values, from);
      return pruneRepository(ctx.repo, { ...input, signal: ctx.signal, onProgress: ctx.onProgress, log: ctx.log });
    },
    summary: (report) => pruneSummary(report),
  }));
};

/** "deleted 3, 1.2 GiB" / "would delete 3, 1.2 GiB" */
function pruneSummary(report: PruneReport): string {
  return `${report.dryRun ? 'would delete' : 'deleted'} ${report.backupsDeleted}, ${formatBytes(report.bytesFreed)}`;
}
