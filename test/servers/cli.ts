/**
 * `npm run -s test-server -- s3|gcs --port PORT [--dir DIR] [--bucket NAME]...`: start a test server in
 * the foreground for manual use, until Ctrl-C / SIGTERM.
 *   s3   s3rver behind the precondition-enforcing layer; credentials S3RVER / S3RVER, path-style.
 *   gcs  the GCS JSON-API test server (in memory); no credentials.
 * Buckets named with --bucket exist from the start; the CLI also creates a missing bucket on create.
 */
import { parseArgs } from 'util';
import { startGcsServer } from './gcs-server';
import { S3_TEST_CREDENTIALS, startS3Server } from './s3-server';

const USAGE = 'usage: npm run -s test-server -- s3|gcs --port PORT [--dir DIR (s3 only)] [--bucket NAME]...';

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: { port: { type: 'string' }, dir: { type: 'string' }, bucket: { type: 'string', multiple: true }, help: { type: 'boolean' } } });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  const kind = positionals[0];
  const port = Number(values.port ?? 0);
  if (values.help || (kind !== 's3' && kind !== 'gcs') || !Number.isInteger(port) || port < 0 || port > 65535 || positionals.length > 1) {
    process.stderr.write(`${USAGE}\n`);
    return values.help ? 0 : 2;
  }
  const buckets = values.bucket ?? [];
  let stop: () => Promise<void>;
  if (kind === 's3') {
    const server = await startS3Server({ port, dir: values.dir });
    stop = server.stop;
    if (buckets.length) {
      const { createDriver } = await import('../../lib/drivers');
      for (const bucket of buckets) {
        const driver = createDriver({ backend: 's3', bucket, endpoint: server.endpoint, forcePathStyle: true, checksums: 'when_required', ...S3_TEST_CREDENTIALS });
        await driver.putContainer('');
        await driver.close?.();
      }
    }
    process.stdout.write(
      `S3 test server (s3rver + precondition layer) on ${server.endpoint}, data in ${server.dir}\n` +
        `credentials: AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER\n` +
        `repository URL: s3://BUCKET?endpoint=${server.endpoint}&forcePathStyle=true&checksums=when_required\n`,
    );
  } else {
    const server = await startGcsServer({ port, buckets });
    stop = server.stop;
    process.stdout.write(`GCS test server on ${server.endpoint} (in memory)\nrepository URL: gs://BUCKET?endpoint=${server.endpoint}&project=test\n`);
  }
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await stop();
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => (process.exitCode = code),
  (err) => {
    process.stderr.write(`test server failed: ${(err as Error).message}\n`);
    process.exitCode = 1;
  },
);
