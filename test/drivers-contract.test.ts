/**
 * The driver contract (test/contract/driver-contract.ts), run against every backend here: posix on a
 * temporary directory, s3 through the precondition-enforcing layer in front of s3rver, gcs against the
 * GCS test server with the real client, and the example third-party backend examples/custom-backend.
 */
import { driverContract } from './contract/driver-contract';
import { moduleBackend } from './contract/module-backend';
import { Backend, gcsBackend, posixBackend, s3Backend } from './servers/backends';

for (const backend of [posixBackend(), s3Backend(), gcsBackend()] as Backend[]) {
  driverContract({ name: backend.name, hasPrefix: backend.name !== 'posix', start: () => backend.start(), stop: () => backend.stop(), driver: (o) => backend.driver(o) });
}

driverContract(moduleBackend('./examples/custom-backend'));
