/** The CLI's commands; each lives in its own file. */
import type { Command } from '../command';
import { create } from './create';
import { del } from './delete';
import { init } from './init';
import { list } from './list';
import { prune } from './prune';
import { restore } from './restore';
import { show } from './show';
import { verify } from './verify';
import { cleanup } from './cleanup';
import { cancelCommand } from './cancel';
import { resetStatusCommand } from './reset-status';
import { exportCommand, importCommand } from './transfer';

export const COMMANDS: Command[] = [init, create, restore, list, show, del, prune, exportCommand, importCommand, verify, cleanup, cancelCommand, resetStatusCommand];
