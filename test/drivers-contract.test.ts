/**
 * The driver contract (test/contract/driver-contract.ts), run against every backend here: each built-in
 * that can make a scratch repository on its own (posix: testSettings) in a temporary directory, s3
 * through the precondition-enforcing layer in front of s3rver, gcs against the GCS test server with the
 * real client, and the example third-party backend examples/custom-backend.
 */
import { backends } from '../lib/backends/registry';
import { driverContract } from './contract/driver-contract';
import { moduleBackend } from './contract/module-backend';
import { Backend, gcsBackend, s3Backend } from './servers/backends';

// A new built-in with testSettings is covered here without another line.
for (const module of backends().filter((b) => b.testSettings)) driverContract(moduleBackend(module.name));

for (const backend of [s3Backend(), gcsBackend()] as Backend[]) {
  driverContract({ name: backend.name, hasPrefix: true, start: () => backend.start(), stop: () => backend.stop(), driver: (o) => backend.driver(o) });
}

driverContract(moduleBackend('./examples/custom-backend'));
