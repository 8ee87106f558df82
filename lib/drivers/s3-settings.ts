/**
 * The S3 backend's defaults, in one place: the settings schema (index.ts), the repository URL parser,
 * the driver-config node and the driver itself read them from here. No SDK import: loading this costs
 * nothing for a user who never touches S3.
 */
const MiB = 1024 * 1024;

export const S3_DEFAULTS = {
  prefix: '',
  /** The SDK's and AWS's default region; buckets there are created without a LocationConstraint. */
  region: 'us-east-1',
  forcePathStyle: false,
  /** 'when_supported' is the SDK default (CRC32, aws-chunked); most S3-compatible stores need 'when_required'. */
  checksums: 'when_supported',
  /** Conditional writes on unless a user says the store does not enforce them (single writer only). */
  conditionalWrites: true,
  /** Objects larger than this go up as multipart uploads. */
  multipartThreshold: 16 * MiB,
  partSize: 8 * MiB,
} as const;

/** S3 refuses parts smaller than this (except the last). */
export const S3_MIN_PART_SIZE = 5 * MiB;
