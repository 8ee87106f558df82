/**
 * From a driver spec (driver-config node) or a repository URL (CLI) to a Driver, through the backend
 * registry (lib/backends/registry.ts: the one list of backends, each a module that declares its
 * settings, URL scheme, editor rows, capabilities and factory). Secrets never come from URLs: the
 * environment or the node's credentials supply them.
 */
import { gcsBackend } from '../backends/gcs';
import { posixBackend } from '../backends/posix';
import { s3Backend } from '../backends/s3';

export type { BackendModule, BackendExport, BackendToolkit, Capabilities, DriverContext, SettingField } from '../backends/backend';
export {
  DriverSpec, backendNamed, backends, createDriver, formatRepositoryUrl, loadBackendModules, parseRepositoryUrl, registerBackend,
} from '../backends/registry';

/** The built-in backends' settings schemas (their drivers take z.infer of these). */
export const PosixSpec = posixBackend.settings;
export const S3Spec = s3Backend.settings;
export const GcsSpec = gcsBackend.settings;
