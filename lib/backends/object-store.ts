/** What the object-store backend modules (s3, gcs) share: settings pieces, URL pieces, their location in words. */
import { z } from 'zod';
import type { SettingField } from './backend';

/** Optional tuning of the object stores' retries (lib/drivers/retry.ts); the defaults suit most links. */
export const RetrySettings = z
  .object({
    maxAttempts: z.number().int().min(1).max(100),
    maxElapsedMs: z.number().int().positive(),
    baseDelayMs: z.number().int().min(0),
    maxDelayMs: z.number().int().min(0),
    attemptTimeoutMs: z.number().int().positive(),
  })
  .partial();

/** A URL query flag: 1/true/yes/on, 0/false/no/off; undefined when absent. */
export const queryFlag = (v: string | null): boolean | undefined => (v === null ? undefined : /^(1|true|yes|on)$/i.test(v));

/** The key prefix of "scheme://bucket/prefix". */
export const urlPrefix = (url: { pathname: string }): string => decodeURIComponent(url.pathname.replace(/^\/+/, ''));

/** "scheme://bucket[/prefix][?query]" with the query's empty values left out. */
export function bucketUrl(scheme: string, bucket: string, prefix: string | undefined, query: Record<string, string | undefined>): string {
  const q = new URLSearchParams(Object.entries(query).filter((e): e is [string, string] => !!e[1]));
  const path = prefix ? `/${prefix.split('/').map(encodeURIComponent).join('/')}` : '';
  return `${scheme}://${bucket}${path}${q.size ? `?${q}` : ''}`;
}

/** An endpoint URL as it may be shown to anyone: no user, password, query or fragment. */
export function endpointForPeople(endpoint: string): string {
  try {
    const url = new URL(endpoint);
    return `${url.protocol}//${url.host}${url.pathname === '/' ? '' : url.pathname}`;
  } catch {
    return '(invalid endpoint)';
  }
}

/** "s3://bucket/prefix at http://host:port": where a bucket repository is, for people. */
export function describeBucket(scheme: string, s: { bucket?: string; prefix?: string; endpoint?: string }): string {
  const where = [s.bucket || '?', s.prefix].filter(Boolean).join('/');
  return `${scheme}://${where}${s.endpoint ? ` at ${endpointForPeople(s.endpoint)}` : ''}`;
}

/** The rows s3 and gcs show alike (declared once so the editor shows one input for both). */
export const BUCKET_FIELDS: SettingField[] = [
  { name: 'bucket', label: 'Bucket', input: 'text', icon: 'archive' },
  { name: 'prefix', label: 'Prefix', input: 'text', icon: 'folder-o', placeholder: 'backups/' },
  { name: 'endpoint', label: 'Endpoint', input: 'text', icon: 'globe', placeholder: 'default of the service' },
];
