/**
 * `npm run -s test-backend -- <module> [--repo URL]` loads this (scripts/test-backend.js): the whole
 * driver contract against one backend module, named in VOLUME_BACKUP_CONTRACT_MODULE.
 */
import { driverContract } from './driver-contract';
import { moduleBackend } from './module-backend';

const specifier = process.env.VOLUME_BACKUP_CONTRACT_MODULE;
if (!specifier) throw new Error('VOLUME_BACKUP_CONTRACT_MODULE names no backend module: run npm run test-backend -- <module>');
driverContract(moduleBackend(specifier, { repo: process.env.VOLUME_BACKUP_CONTRACT_REPO || undefined, from: process.env.INIT_CWD || process.cwd() }));
