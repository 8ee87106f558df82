/**
 * Where a posix driver-config keeps its backups when its path is left empty: a folder in the Node-RED
 * user directory, so that a flow imported from the examples works before anything is set up.
 */
import * as os from 'os';
import * as path from 'path';
import type { NodeAPI } from './red';

export const DEFAULT_REPOSITORY_FOLDER = 'volume-backups';

export function defaultRepositoryPath(RED: Pick<NodeAPI, 'settings'>): string {
  const userDir = typeof RED.settings.userDir === 'string' && RED.settings.userDir ? RED.settings.userDir : path.join(os.homedir(), '.node-red');
  return path.join(userDir, DEFAULT_REPOSITORY_FOLDER);
}
