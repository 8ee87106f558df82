/**
 * Which S3 store the S3 test suites run against. By default the s3rver test server (s3-server.ts), which
 * each suite starts itself. With S3_TEST_ENDPOINT set (as `scripts/ceph-rgw.sh start` prints it), they run
 * against that store instead: S3_TEST_ACCESS_KEY_ID, S3_TEST_SECRET_ACCESS_KEY, S3_TEST_BUCKET (an existing
 * bucket the suites may empty), S3_TEST_REGION (us-east-1) and S3_TEST_STORE (a name for test titles).
 */
import { AbortMultipartUploadCommand, DeleteBucketCommand, DeleteObjectsCommand, ListMultipartUploadsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { S3_TEST_CREDENTIALS } from './s3-server';

// The tests' own clients, like the driver's, need not print the SDK's notice about its future Node 22 requirement.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const TargetEnv = z.object({
  S3_TEST_ENDPOINT: z.string().url(),
  S3_TEST_ACCESS_KEY_ID: z.string().min(1),
  S3_TEST_SECRET_ACCESS_KEY: z.string().min(1),
  S3_TEST_BUCKET: z.string().min(3),
  S3_TEST_REGION: z.string().min(1).default('us-east-1'),
  S3_TEST_STORE: z.string().min(1).default('s3'),
});

export interface S3Target {
  store: string;
  endpoint: string;
  region: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
}

function targetFromEnv(env: NodeJS.ProcessEnv): S3Target | null {
  if (!env.S3_TEST_ENDPOINT) return null;
  const parsed = TargetEnv.safeParse(env);
  if (!parsed.success) {
    throw new Error(`S3_TEST_ENDPOINT is set but the S3 test target is incomplete: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  const e = parsed.data;
  return { store: e.S3_TEST_STORE, endpoint: e.S3_TEST_ENDPOINT, region: e.S3_TEST_REGION, bucket: e.S3_TEST_BUCKET, accessKeyId: e.S3_TEST_ACCESS_KEY_ID, secretAccessKey: e.S3_TEST_SECRET_ACCESS_KEY };
}

/** The external S3 store the suites are pointed at, or null for the s3rver test server. */
export const S3_TARGET = targetFromEnv(process.env);

/** The name of the store under test, for titles: "s3rver" or the target's. */
export const S3_STORE = S3_TARGET?.store ?? 's3rver';

/** The credentials the S3 tests sign with. */
export const S3_CREDENTIALS = S3_TARGET ? { accessKeyId: S3_TARGET.accessKeyId, secretAccessKey: S3_TARGET.secretAccessKey } : S3_TEST_CREDENTIALS;

/** Environment for CLI processes that use the S3 store under test (and nothing from the user's AWS files). */
export const S3_CLI_ENV = {
  AWS_ACCESS_KEY_ID: S3_CREDENTIALS.accessKeyId,
  AWS_SECRET_ACCESS_KEY: S3_CREDENTIALS.secretAccessKey,
  AWS_REGION: S3_TARGET?.region ?? 'us-east-1',
  AWS_CONFIG_FILE: '/dev/null',
  AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
};

/** Buckets the suites make themselves and expect absent at their start. */
const SCRATCH_BUCKETS = ['no-such-bucket', 'fresh-bucket'];

/**
 * Empty the target's bucket (objects and unfinished multipart uploads) and remove the scratch buckets,
 * so a suite starts as it would on a fresh s3rver: the suites assert what a listing holds.
 */
export async function resetTarget(target: S3Target): Promise<void> {
  const client = new S3Client({ endpoint: target.endpoint, region: target.region, forcePathStyle: true, credentials: S3_CREDENTIALS, requestChecksumCalculation: 'WHEN_REQUIRED' });
  try {
    await emptyBucket(client, target.bucket);
    for (const Bucket of SCRATCH_BUCKETS) {
      const gone = await emptyBucket(client, Bucket).then(() => false, (err) => err?.name === 'NoSuchBucket' || Promise.reject(err));
      if (!gone) await client.send(new DeleteBucketCommand({ Bucket }));
    }
  } finally {
    client.destroy();
  }
}

async function emptyBucket(client: S3Client, Bucket: string): Promise<void> {
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket, ContinuationToken: token }));
    const keys = (page.Contents ?? []).map((o) => ({ Key: o.Key! }));
    if (keys.length) await client.send(new DeleteObjectsCommand({ Bucket, Delete: { Objects: keys, Quiet: true } }));
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  const uploads = (await client.send(new ListMultipartUploadsCommand({ Bucket }))).Uploads ?? [];
  for (const u of uploads) await client.send(new AbortMultipartUploadCommand({ Bucket, Key: u.Key!, UploadId: u.UploadId! }));
}
