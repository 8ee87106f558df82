/**
 * The sidebar's HTTP parameters, checked before anything touches a repository. Anything unexpected
 * (unknown fields, relative or "../" paths, ids that are not ids) is refused with INVALID_ARGUMENT.
 */
import * as path from 'path';
import { z } from 'zod';
import { invalid } from '../../lib/errors';
import { resolvePolicy } from '../../lib/repository/retention';
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from './view';

const BACKUP_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const VOLUME_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
/** Node-RED's node ids are 16 hex digits; hand-written flows use other short names. */
const NODE_ID = /^[A-Za-z0-9_.-]{1,64}$/;

const backupId = z.string().regex(BACKUP_ID, 'must be a backup id (a UUID)');
const volumeId = z.string().regex(VOLUME_ID, 'must be a volume id (letters, digits, ".", "_", "-")').refine((s) => !s.includes('..'), 'must not contain ".."');

/** An absolute path with no "..", no control characters and no trailing slash. */
export const RestoreTarget = z
  .string()
  .min(1, 'is empty')
  .max(4096, 'is too long')
  .refine((p) => !/[\u0000-\u001f\u007f]/.test(p), 'contains control characters')
  .refine((p) => path.isAbsolute(p), 'must be an absolute path')
  .refine((p) => !p.split(/[\\/]/).includes('..'), 'must not contain ".."')
  .refine((p) => !p.endsWith('/'), 'must name a file or device, not a directory');

export const OperationRequest = z.discriminatedUnion(
  'action',
  [
    z.object({ action: z.literal('verify'), backupId }).strict(),
    z.object({ action: z.literal('restore'), backupId, target: RestoreTarget, overwrite: z.boolean().default(false) }).strict(),
    z.object({ action: z.literal('delete'), backupId }).strict(),
    z
      .object({
        action: z.literal('prune'),
        policy: z.record(z.string(), z.unknown()),
        volumeId: volumeId.optional(),
        dryRun: z.boolean().default(true),
      })
      .strict(),
  ],
  { error: 'action must be verify, restore, delete or prune' },
);
export type OperationRequest = z.infer<typeof OperationRequest>;

const OperationBody = z.object({ wait: z.boolean().default(false) }).passthrough();

function issuesText(error: z.ZodError): string {
  return error.issues.map((i) => (i.path.length ? `${i.path.join('.')} ${i.message}` : i.message)).join('; ');
}

function parse<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw invalid(`invalid ${what}: ${issuesText(parsed.error)}`);
  return parsed.data;
}

export function parseConfigId(value: unknown): string {
  return parse(z.string().regex(NODE_ID, 'must be a node id'), value, 'driver-config id');
}

export function parseOperationId(value: unknown): string {
  return parse(z.string().regex(BACKUP_ID, 'must be an operation id (a UUID)'), value, 'operation id');
}

const pageNumber = (max: number) => z.string().regex(/^\d{1,7}$/, 'must be a whole number').transform(Number).refine((n) => n <= max, `must be at most ${max}`);

/** GET …/backups?volumeId=&page=&size=: one volume or all, one page (0-based) of `size` backups. */
export function parseListQuery(query: unknown): { volumeId?: string; page: number; size: number } {
  const { volumeId: id, page, size } = parse(
    z.object({ volumeId: volumeId.optional(), page: pageNumber(9_999_999).optional(), size: pageNumber(MAX_PAGE_SIZE).refine((n) => n >= 1, 'must be at least 1').optional() }).strict(),
    query ?? {},
    'query',
  );
  return { ...(id === undefined ? {} : { volumeId: id }), page: page ?? 0, size: size ?? DEFAULT_PAGE_SIZE };
}

/** The body of POST …/operations: the operation, and whether the reply waits for its end. */
export function parseOperationBody(body: unknown): { request: OperationRequest; wait: boolean } {
  const { wait, ...rest } = parse(OperationBody, body ?? {}, 'request');
  const request = parse(OperationRequest, rest, 'request');
  if (request.action === 'prune') resolvePolicy(request.policy); // INVALID_ARGUMENT with the rule's name
  return { request, wait };
}
