/**
 * The editor refuses what the runtime refuses (issue 18 item 6): the validators of the shared editor
 * script (resources/volume-backup-editor.js, run here as Node-RED's editor runs it, without a build)
 * against the runtime's own checks, on chosen values and on many generated ones. Every refusal is words,
 * not zod text.
 */
import * as assert from 'assert';
import fc from 'fast-check';
import * as path from 'path';
import { checkBackupId, checkVolumeId } from '../lib/repository/names';
import { RetentionPolicySchema } from '../lib/repository/retention';
import { SnapshotProviderConfig } from '../lib/snapshot';
import { checkLvmSize } from '../lib/snapshot/lvm';
import { BackupInput, FullReadEvery } from '../nodes/common/backup-options';
import { parseSeconds } from '../nodes/common/resolve';

const ROOT = path.resolve(__dirname, '..', '..');
type Rule = (value: string) => true | string;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const editor = require(path.join(ROOT, 'resources', 'volume-backup-editor.js')) as { rules: Record<string, Rule> };

const accepts = (check: () => unknown): boolean => {
  try {
    check();
    return true;
  } catch {
    return false;
  }
};
const zodAccepts = (schema: { safeParse(v: unknown): { success: boolean } }, value: unknown) => schema.safeParse(value).success;
const parsedJson = (v: string): unknown => {
  try {
    return JSON.parse(v);
  } catch {
    return Symbol('not JSON');
  }
};

/** What the runtime says of a value the node's form holds as text. */
const RUNTIME: Record<string, (v: string) => boolean> = {
  volumeId: (v) => accepts(() => checkVolumeId(v)),
  backupId: (v) => accepts(() => checkBackupId(v)),
  lvmSize: (v) => accepts(() => checkLvmSize(v)),
  lockWait: (v) => accepts(() => parseSeconds(v, 'lock wait')),
  fullReadEvery: (v) => zodAccepts(FullReadEvery, v),
  // The node turns the field into a number (nodes/snapshot-backup providerConfigFromNode).
  timeoutSeconds: (v) => zodAccepts(SnapshotProviderConfig, { provider: 'copy', timeoutSeconds: Number(v) }),
  command: (v) => {
    const argv = parsedJson(v);
    return Array.isArray(argv) && argv.every((a) => typeof a === 'string') && zodAccepts(SnapshotProviderConfig, { provider: 'command', createCommand: argv });
  },
  policy: (v) => zodAccepts(RetentionPolicySchema, parsedJson(v)),
  backupName: (v) => zodAccepts(BackupInput, { name: v }),
  description: (v) => zodAccepts(BackupInput, { description: v }),
};

const SAMPLES: Record<string, string[]> = {
  volumeId: ['vm1', 'disk-one.img', 'a', 'A_b.c-9', '-bad', '.hidden', 'a..b', 'a/b', 'x'.repeat(128), 'x'.repeat(129), 'ü', ' vm1', 'vm 1'],
  backupId: ['0b5c7f1e-8a5e-4a57-9d43-2f8ad0c1e0a7', '0B5C7F1E-8A5E-4A57-9D43-2F8AD0C1E0A7', '0b5c7f1e8a5e4a579d432f8ad0c1e0a7', 'latest', '../../etc/passwd'],
  lvmSize: ['2G', '512M', '1.5g', '10%ORIGIN', '50%FREE', '100', '10%', '-1G', '2 G', 'G', '10%origin'],
  lockWait: ['0', '30', '2.5', '86400', '86401', '-1', 'abc', '1e3', ' 5 ', '.5'],
  fullReadEvery: ['0', '1', '30', ' 7 ', '-1', '2.5', 'x', '1e3', '99999999999999999999'],
  timeoutSeconds: ['1', '0.5', '604800', '604801', '0', '-1', 'abc', '1e3', '10 '],
  command: ['["/bin/snap", "{volume}"]', '["x"]', '[]', '"x"', '[1]', '{"a": 1}', 'not json', '["a", 2]'],
  policy: ['{"keepDaily": 7, "keepWeekly": 4}', '{}', '{"keepLast": "unlimited"}', '{"keepLast": "3"}', '{"keepLast": -1}', '{"keepLast": 1.5}',
    '{"keepLast": 1000001}', '{"keepDayly": 7}', '{"keepWithin": "7d"}', '{"keepWithin": 7}', '[]', '7', 'null', '{"timeZone": "Europe/Paris"}'],
  backupName: ['nightly', 'x'.repeat(1024), 'x'.repeat(1025)],
  description: ['', 'x'.repeat(4096), 'x'.repeat(4097)],
};

describe('editor validation = runtime validation', () => {
  for (const [name, samples] of Object.entries(SAMPLES)) {
    it(`${name}: the editor accepts exactly what the runtime accepts, and says what is wrong in words`, () => {
      for (const value of samples) {
        const said = editor.rules[name](value);
        assert.strictEqual(said === true, RUNTIME[name](value), `${name} ${JSON.stringify(value)}: editor says ${JSON.stringify(said)}`);
        if (said !== true) {
          assert.ok(typeof said === 'string' && said.length > 10, `a refusal in words: ${JSON.stringify(said)}`);
          assert.doesNotMatch(said, /invalid_type|too_big|Expected|received/, 'not zod text');
        }
      }
    });
  }

  it('agrees with the runtime on generated values too', () => {
    const chars = fc.constantFrom(...'aZ09.-_/ %GMkORIGINFREE:'.split(''));
    const word = fc.string({ unit: chars, maxLength: 12 });
    const number = fc.oneof(fc.nat({ max: 1_000_000 }).map(String), fc.double({ min: -10, max: 1e6, noNaN: true }).map(String), word);
    for (const name of ['volumeId', 'lvmSize']) {
      // A blank field is "not set" (the runtime's default), never checked.
      fc.assert(fc.property(word, (v) => v.trim() === '' || (editor.rules[name](v) === true) === RUNTIME[name](v)), { numRuns: 300 });
    }
    for (const name of ['lockWait', 'timeoutSeconds', 'fullReadEvery']) {
      fc.assert(fc.property(number, (v) => v.trim() === '' || (editor.rules[name](v) === true) === RUNTIME[name](v)), { numRuns: 300 });
    }
    const rule = fc.constantFrom('keepLast', 'keepDaily', 'keepWeekly', 'keepWithin', 'timeZone', 'keepSometimes');
    const value = fc.oneof(fc.integer({ min: -2, max: 1_000_002 }), fc.constant('unlimited'), fc.constant('7d'), fc.constant('12'), fc.double({ noNaN: true }));
    fc.assert(fc.property(fc.dictionary(rule, value, { maxKeys: 3 }), (p) => {
      const v = JSON.stringify(p);
      return (editor.rules.policy(v) === true) === RUNTIME.policy(v);
    }), { numRuns: 300 });
  });
});
