/**
 * The gcs backend: Google Cloud Storage (lib/drivers/gcs.ts, whose client loads only when used).
 * URL: gs://bucket[/prefix]?endpoint=URL&project=P (gcs:// too).
 */
import { z } from 'zod';
import type { Driver } from '../drivers/driver';
import type { BackendModule } from './backend';
import { BUCKET_FIELDS, RetrySettings, bucketUrl, describeBucket, urlPrefix } from './object-store';

const settings = z.object({
  bucket: z.string().min(3).max(222),
  prefix: z.string().default(''),
  project: z.string().optional(),
  endpoint: z.string().url().optional(),
  /** Service-account key JSON (from the node's credentials or a file named by GOOGLE_APPLICATION_CREDENTIALS). */
  credentials: z.string().optional(),
  resumableThreshold: z.number().int().positive().optional(),
  retry: RetrySettings.optional(),
});

export const gcsBackend: BackendModule<typeof settings> = {
  name: 'gcs',
  label: 'Google Cloud Storage',
  settings,
  fields: [
    ...BUCKET_FIELDS,
    { name: 'project', label: 'Project', input: 'text', icon: 'briefcase' },
    {
      name: 'serviceAccountJson', setting: 'credentials', label: 'Service account', input: 'password', secret: true, icon: 'lock',
      placeholder: 'paste the key JSON, or use GOOGLE_APPLICATION_CREDENTIALS',
    },
  ],
  url: {
    schemes: ['gs', 'gcs'],
    parse: (url, env) => ({
      bucket: (url as URL).hostname,
      prefix: urlPrefix(url),
      endpoint: url.searchParams.get('endpoint') ?? undefined,
      project: url.searchParams.get('project') ?? env.GOOGLE_CLOUD_PROJECT ?? undefined,
    }),
    format: (s) => bucketUrl('gs', s.bucket, s.prefix, { endpoint: s.endpoint, project: s.project }),
  },
  capabilities: { conditionalWrites: 'store', multipart: true, localDirectory: false, md5: true },
  describe: (s) => describeBucket('gs', s),
  create(s, context): Driver {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- the GCS client loads only for a gcs repository
    return (require('../drivers/gcs') as typeof import('../drivers/gcs')).createGcsDriver(s, context);
  },
};
