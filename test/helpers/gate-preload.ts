/**
 * Loaded with NODE_OPTIONS=--require into a CLI or Node-RED process under test: a backup stops making
 * progress at a known point, whatever the machine's speed, as if its storage stalled. From the
 * VB_GATE_AT-th data object of each backup on, writes of data objects wait while the file VB_GATE_FILE
 * does not exist (the test creates it to let them go on, and removes it to stall the next backup), or
 * until the process cancels an operation (an abort with a CANCELLED reason: a cancel must not wait for
 * the stalled storage). Everything else (records, leases, locks) goes through at once.
 */
import * as fs from 'fs';

// Read at each write: a test that requires this module itself arms it only while it runs.
const gateFile = () => process.env.VB_GATE_FILE ?? '';
const at = () => Number(process.env.VB_GATE_AT ?? '3');
const DATA_OBJECT = /backup_([0-9a-f-]{36})-(\d{5})\.tmp-/;
/** Per backup: the data objects (temporary file names: each is opened more than once) in the order they were begun. */
const seen = new Map<string, string[]>();
let cancels = 0;
const cancelsAtStall = new Map<string, number>();

const abort = AbortController.prototype.abort;
AbortController.prototype.abort = function (this: AbortController, reason?: unknown) {
  if ((reason as { code?: string } | undefined)?.code === 'CANCELLED') cancels++;
  return abort.call(this, reason);
};

async function gate(file: unknown): Promise<void> {
  const m = typeof file === 'string' ? DATA_OBJECT.exec(file) : null;
  if (!gateFile() || !m) return;
  const names = seen.get(m[1]) ?? [];
  seen.set(m[1], names);
  if (!names.includes(file as string)) names.push(file as string);
  if (names.indexOf(file as string) + 1 < at()) return;
  // Counted from the backup's first stalled write: after a cancel, none of its writes waits any more.
  if (!cancelsAtStall.has(m[1])) cancelsAtStall.set(m[1], cancels);
  while (!fs.existsSync(gateFile()) && cancels === cancelsAtStall.get(m[1])) await new Promise((r) => setTimeout(r, 20));
}

type Fn = (...args: unknown[]) => Promise<unknown>;
const fsp = fs.promises as unknown as Record<string, Fn>;
const open = fsp.open;
fsp.open = async function (this: unknown, ...args: unknown[]) {
  await gate(args[0]);
  return open.apply(this, args);
};
