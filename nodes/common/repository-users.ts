/**
 * A repository stays open while an operation uses it: a driver-config closed by a deploy must not close
 * the repository under a running backup that a re-created node took over. The last user closes it.
 */
import type { Repository } from '../../lib/repository/repository';

const users = new Map<Repository, number>();
const closeWhenDone = new Set<Repository>();

/** Count one more user of `repo`; the returned function (call it once) gives it back. */
export function useRepository(repo: Repository): () => void {
  users.set(repo, (users.get(repo) ?? 0) + 1);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    const left = (users.get(repo) ?? 1) - 1;
    if (left > 0) return void users.set(repo, left);
    users.delete(repo);
    if (closeWhenDone.delete(repo)) repo.close().catch(() => undefined);
  };
}

/** Close `repo` now when nobody uses it, else when its last user is done (the promise does not wait for that). */
export async function closeWhenUnused(repo: Repository): Promise<void> {
  if (users.has(repo)) {
    closeWhenDone.add(repo);
    return;
  }
  await repo.close();
}
