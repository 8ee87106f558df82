/** The posix backend: a directory on this machine or a mount (lib/drivers/posix.ts). URL: a path or file:///path. */
import { z } from 'zod';
import { PosixDriver } from '../drivers/posix';
import type { BackendModule } from './backend';

const settings = z.object({
  /** Base directory of the repository. */
  path: z.string().min(1),
});

export const posixBackend: BackendModule<typeof settings> = {
  name: 'posix',
  label: 'Directory (posix)',
  settings,
  fields: [{ name: 'path', label: 'Path', input: 'text', icon: 'folder', placeholder: 'empty: volume-backups in the Node-RED user directory', defaultInNodeRed: true }],
  url: {
    schemes: ['file'],
    plainPath: true,
    // file:///a%20b is decoded; a plain path is taken as written.
    parse: (url) => ({ path: url instanceof URL ? decodeURIComponent(url.pathname) : url.pathname }),
    format: (s) => s.path,
  },
  capabilities: { conditionalWrites: 'local', multipart: false, localDirectory: true, md5: false },
  describe: (s) => s.path ?? '',
  testSettings: (scratchDir) => ({ path: scratchDir }),
  create: (s) => new PosixDriver({ path: s.path }),
};
