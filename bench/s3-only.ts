/**
 * The S3 part alone (what `npm run bench` runs as its S3 part): `node dist/bench/s3-only.js [--size 256M]
 * [--repeat N] [--work DIR]`. With S3_TEST_STORE=rgw and S3_TEST_ENDPOINT… in the environment (the output of
 * `scripts/ceph-rgw.sh env`) it uses that RGW instead of standing one up.
 */
import * as os from 'os';
import * as path from 'path';
import { parseSize } from './run';
import { runS3Bench } from './s3';
import { s3Markdown } from './report';

async function main(argv: string[]): Promise<void> {
  const value = (flag: string): string | undefined => (argv.includes(flag) ? argv[argv.indexOf(flag) + 1] : undefined);
  const root = path.resolve(__dirname, '..', '..');
  const work = path.resolve(value('--work') ?? path.join(os.tmpdir(), 'volume-backup-bench'));
  const s3 = await runS3Bench(root, work, parseSize(value('--size') ?? '256M'), (line) => process.stderr.write(`[bench] ${line}\n`), Number(value('--repeat') ?? 1));
  process.stdout.write(s3Markdown(s3.rows, s3.note).join('\n') + '\n');
}

main(process.argv.slice(2)).catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exitCode = 1;
});
