/** Removal of a temporary from its handle alone: used at the end of a backup and by start-up cleanup. */
import { removeBtrfsSnapshot } from './btrfs';
import { removeCommandSnapshot } from './command';
import { removeTemporaryFile } from './files';
import { removeLvmSnapshot } from './lvm';
import { DEFAULT_TIMEOUT_MS, ProviderContext, RemovalHandle } from './provider';

export async function removeTemporary(handle: RemovalHandle, ctx: ProviderContext): Promise<void> {
  switch (handle.provider) {
    case 'btrfs':
      return removeBtrfsSnapshot(handle, ctx, DEFAULT_TIMEOUT_MS.btrfs);
    case 'reflink':
    case 'copy':
      return removeTemporaryFile(handle.file);
    case 'lvm':
      return removeLvmSnapshot(handle, ctx, DEFAULT_TIMEOUT_MS.lvm);
    case 'command':
      return removeCommandSnapshot(handle, ctx);
  }
}
