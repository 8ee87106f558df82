/**
 * node-red-contrib-volume-backup's engine: everything the Node-RED nodes and the CLI use.
 * Nothing under lib/ imports Node-RED.
 */
export * from './errors';
export * from './engine/types';
export { openRepository, OpenRepositoryOptions, initRepository, InitRepositoryOptions } from './open';
export { Repository } from './repository/repository';
export { BackupRecord, BackupStatus, BackupKind, Compression, parseRecord } from './repository/records';
export { DriverSpec, parseRepositoryUrl, formatRepositoryUrl, createDriver, registerBackend, loadBackendModules, backends } from './drivers';
export type { BackendModule, BackendExport, BackendToolkit, Capabilities, SettingField } from './drivers';
export { Driver, ObjectEntry } from './drivers/driver';
export { checkVolumeId, checkBackupId, volumeIdForPath } from './repository/names';
export { DEFAULT_CHUNK_SIZE, DEFAULT_BLOCK_SIZE, DEFAULT_COMPRESSION } from './engine/settings';
export { createBackup } from './engine/backup';
export { createSnapshotBackup, SnapshotBackupOptions, SnapshotBackupOptionsSchema } from './engine/snapshot-backup';
export { cleanupTemporarySnapshots, CleanupOptions as SnapshotCleanupOptions, CleanupResult as SnapshotCleanupResult, ProviderChoice, SnapshotProviderConfig, TemporarySnapshot } from './snapshot';
export { restoreBackup } from './engine/restore';
export { deleteBackup } from './engine/delete';
export { pruneRepository, PruneOptions, PruneReport, VolumePruneReport, KeptBackupReport, DeletedBackupReport, OrphanReport } from './engine/prune';
export { RetentionPolicy, resolvePolicy, planRetention, describePolicy } from './repository/retention';
export { listBackups, getBackup, findParent, dependentsOf, chainOf } from './repository/catalog';
export { exportRecord, importRecord } from './repository/transfer';
export { verifyRepository, VerifyOptions, VerifyResult, VerifyProblem, VerifyNote } from './engine/verify';
export { cleanupHost, HostCleanupOptions, HostCleanupResult } from './engine/cleanup';
export { resetStatus, ResetStatusOptions, ResetStatusResult } from './engine/reset-status';
