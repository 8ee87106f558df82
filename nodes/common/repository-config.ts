/** What the operation nodes need from a driver-config node (implemented in nodes/driver-config). */
import type { CinderStore } from '../../lib/cinder/store';
import type { Repository } from '../../lib/repository/repository';
import type { Compression } from '../../lib/repository/records';
import type { Limiter } from './limiter';
import type { Node } from './red';

export interface RepositoryDefaults {
  chunkSize?: number;
  blockSize?: number;
  compression?: Compression;
  /** Send one message per chunk on the progress output. */
  progress: boolean;
}

export interface RepositoryConfigNode extends Node {
  /** Opened once and cached; `create` makes the repository if it does not exist (backup nodes). */
  getRepository(create: boolean): Promise<Repository>;
  /** Shared by every node using this config: at most "max concurrent operations" run at once. */
  limiter: Limiter;
  defaults: RepositoryDefaults;
  /**
   * Set when the config points at a Cinder store (read-only, lib/cinder): the restore node and the
   * sidebar list, verify and restore its backups through it; getRepository refuses.
   */
  getCinderStore?(): Promise<CinderStore>;
}

export function isRepositoryConfigNode(node: unknown): node is RepositoryConfigNode {
  return typeof node === 'object' && node !== null && typeof (node as RepositoryConfigNode).getRepository === 'function';
}
