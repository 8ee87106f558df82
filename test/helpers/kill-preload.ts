/**
 * Loaded with `node -r` into a CLI process under test: counts the process's mutations of files under
 * VB_KILL_ROOT (opens for writing, renames, links, removals) and SIGKILLs the process itself just
 * before the VB_KILL_AT-th one — a crash at an exact, repeatable point. With VB_KILL_AT=0 it only
 * counts, and writes the count to VB_KILL_COUNT_FILE at exit (to choose the points). With
 * VB_KILL_TRACE_FILE it keeps the number of changes begun so far there (to tell where a kill from
 * outside landed).
 */
import * as fs from 'fs';

const root = process.env.VB_KILL_ROOT ?? '';
const at = Number(process.env.VB_KILL_AT ?? '0');
const countFile = process.env.VB_KILL_COUNT_FILE;
let count = 0;

const traceFile = process.env.VB_KILL_TRACE_FILE;

function touch(target: unknown): void {
  if (!root || typeof target !== 'string' || !target.startsWith(root)) return;
  count++;
  if (count === at) process.kill(process.pid, 'SIGKILL');
  // How many changes were under way when a kill from outside landed (written before the change is made).
  if (traceFile) fs.writeFileSync(traceFile, String(count));
}

type Fn = (...args: unknown[]) => unknown;
const fsp = fs.promises as unknown as Record<string, Fn>;
for (const name of ['rename', 'link', 'rm', 'rmdir', 'unlink', 'writeFile', 'truncate', 'appendFile']) {
  const original = fsp[name];
  fsp[name] = function (this: unknown, ...args: unknown[]) {
    touch(args[0]);
    return original.apply(this, args);
  };
}
const open = fsp.open;
fsp.open = function (this: unknown, ...args: unknown[]) {
  // String flags only: numeric ones (lib/io/direct-io's O_DIRECT opens) are not counted, as before.
  const flags = args[1] ?? 'r';
  if (typeof flags === 'string' && /[wa+]/.test(flags)) touch(args[0]);
  return open.apply(this, args);
};

if (countFile) process.on('exit', () => fs.writeFileSync(countFile, String(count)));
