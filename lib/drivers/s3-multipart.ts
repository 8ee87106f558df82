/**
 * S3 multipart upload with the plain client commands: parts of `partSize` uploaded `concurrency` at a
 * time, each with its Content-MD5 and its own retries; the completed ETag is checked against the parts
 * when it has the md5-of-md5s form (read with HeadObject when the reply has none, as RGW's has not). Any failure or cancellation aborts the upload once no part is in
 * flight any more, so no half upload is left behind (it would cost storage and show in no listing).
 */
import { AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CreateMultipartUploadCommand, CreateMultipartUploadCommandInput, HeadObjectCommand, S3Client, UploadPartCommand } from '@aws-sdk/client-s3';
import { md5, runBounded, storageFailure } from './object-store-helpers';

export interface MultipartUpload {
  client: S3Client;
  /** Bucket, key, storage class, encryption: what CreateMultipartUpload needs. */
  params: CreateMultipartUploadCommandInput & { Bucket: string; Key: string };
  partSize: number;
  concurrency: number;
  /** The driver's retrying call, bound to this key. */
  call: <T>(action: string, fn: (signal: AbortSignal) => Promise<T>, options?: { signal?: AbortSignal; bytes?: number }) => Promise<T>;
  warn?: (message: string) => void;
  /** For messages: where the object goes. */
  where: string;
}

export async function uploadMultipart(up: MultipartUpload, data: Buffer, signal?: AbortSignal): Promise<string> {
  const { client, params: { Bucket, Key } } = up;
  const { UploadId } = await up.call('start multipart upload of', (s) => client.send(new CreateMultipartUploadCommand(up.params), { abortSignal: s }), { signal });
  const parts: Buffer[] = [];
  for (let off = 0; off < data.length; off += up.partSize) parts.push(data.subarray(off, off + up.partSize));
  try {
    const etags = await runBounded(parts, up.concurrency, (part, i, partSignal) =>
      up.call(`upload part ${i + 1}/${parts.length} of`, async (s) => {
        const res = await client.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: i + 1, Body: part, ContentMD5: md5(part).toString('base64') }), { abortSignal: s });
        return res.ETag!;
      }, { signal: partSignal, bytes: part.length }), signal);
    const done = await up.call('complete multipart upload of', (s) => client.send(new CompleteMultipartUploadCommand({
      Bucket, Key, UploadId, MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
    }), { abortSignal: s }), { signal });
    const etag = done.ETag || (await up.call('check', (s) => client.send(new HeadObjectCommand({ Bucket, Key }), { abortSignal: s }), { signal })).ETag;
    if (!etag) throw storageFailure(`multipart upload of ${up.where}`, new Error('the store gave the completed object no ETag'));
    const expected = `${md5(Buffer.concat(parts.map((p) => md5(p)))).toString('hex')}-${parts.length}`;
    if (/-\d+"?$/.test(etag) && etag.replace(/"/g, '') !== expected) {
      throw storageFailure(`multipart upload of ${up.where}`, new Error(`the store's ETag ${etag} does not match the parts sent (${expected})`));
    }
    return etag;
  } catch (err) {
    await up.call('abort multipart upload of', () => client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId })))
      .catch((abortErr) => up.warn?.(`could not abort multipart upload ${UploadId} of ${up.where}: ${abortErr}`));
    throw err;
  }
}
