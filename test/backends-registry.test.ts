/**
 * The backend registry: every built-in's repository URL parses back into the settings it was formatted
 * from; a bad setting is refused in words on the CLI (the same words the editor shows); a module that
 * would clash with another (name, URL scheme, a field declared otherwise) or is not a backend is refused
 * by name; an unknown scheme is refused rather than taken for a relative path.
 */
import * as assert from 'assert';
import * as path from 'path';
import { backendNamed, formatRepositoryUrl, parseRepositoryUrl, registerBackend } from '../lib/backends/registry';
import type { BackendModule } from '../lib/backends/backend';
import { runCli } from './helpers/cli';
import { tempDir } from './helpers/volumes';

describe('backend registry', () => {
  it('formats and parses each built-in repository URL back into the same settings', () => {
    const urls = [
      '/srv/backups',
      's3://bucket-1/a/b?endpoint=http%3A%2F%2F127.0.0.1%3A9000&region=eu-west-1&forcePathStyle=true&checksums=when_required&storageClass=STANDARD_IA&sse=aws%3Akms&kmsKeyId=k1&conditionalWrites=false',
      'gs://bucket-2/p?endpoint=http%3A%2F%2F127.0.0.1%3A4443&project=proj',
    ];
    for (const url of urls) {
      const spec = parseRepositoryUrl(url, {});
      assert.strictEqual(formatRepositoryUrl(spec), url);
      assert.deepStrictEqual(parseRepositoryUrl(formatRepositoryUrl(spec), {}), spec);
    }
    assert.deepStrictEqual(parseRepositoryUrl('file:///srv/a%20b', {}), { backend: 'posix', path: '/srv/a b' });
    assert.strictEqual(parseRepositoryUrl('s3://bucket', { AWS_REGION: 'eu-north-1' }).region, 'eu-north-1');
  });

  it('an unknown scheme is refused, naming the known ones; a relative path with a colon stays a path', () => {
    assert.throws(() => parseRepositoryUrl('shardd:/x', {}), /unsupported repository URL scheme "shardd:".*s3:.*--backend-module/);
    assert.deepStrictEqual(parseRepositoryUrl('./shardd:/x', {}), { backend: 'posix', path: './shardd:/x' });
  });

  it('the CLI refuses a 2-character bucket in words (exit 2), writing nothing', async () => {
    const run = await runCli(['list', '--repo', 's3://ab?endpoint=http://127.0.0.1:1']);
    assert.strictEqual(run.code, 2, run.stderr);
    assert.match(run.stderr, /Bucket must be 3 to 63 characters long; "ab" has 2 characters/);
    const endpoint = await runCli(['list', '--repo', 's3://abc?endpoint=nope']);
    assert.strictEqual(endpoint.code, 2, endpoint.stderr);
    assert.match(endpoint.stderr, /Endpoint must be a URL such as https:\/\/storage\.example\.com:9000, not "nope"/);
  });

  it('refuses modules that are not backends, or clash with one, by name', () => {
    const posix = backendNamed('posix')!;
    const like = (over: Partial<BackendModule>): BackendModule => ({ ...posix, url: { ...posix.url, plainPath: false, schemes: ['t-' + Math.random().toString(36).slice(2, 8)] }, ...over });
    assert.throws(() => registerBackend({ name: 'half' } as unknown as BackendModule, 'package "half"'), /package "half" is not a volume-backup backend: .*label/);
    assert.throws(() => registerBackend(like({ name: 'posix' }), 'package "two"'), /named "posix", which another module already is/);
    assert.throws(() => registerBackend(like({ name: 'other', url: { ...posix.url, plainPath: false, schemes: ['s3'] } }), 'package "three"'), /scheme "s3:" .* is taken by backend "s3"/);
    assert.throws(() => registerBackend(like({ name: 'other2', fields: [{ name: 'bucket', label: 'Bucket', input: 'password', secret: true }] }), 'package "four"'), /field "bucket" unlike backend "s3"/);
    assert.strictEqual(backendNamed('other'), undefined);
    assert.strictEqual(registerBackend(posix), posix, 'registering a module again is a no-op');
  });

  it('the CLI refuses a --backend-module that is not a backend, by name (exit 2)', async () => {
    const dir = await tempDir('registry');
    const run = await runCli(['list', '--repo', dir, '--backend-module', path.join(__dirname, 'helpers', 'cli.js')]);
    assert.strictEqual(run.code, 2, run.stderr);
    assert.match(run.stderr, /backend module ".*cli\.js" is not a volume-backup backend/);
  });
});
