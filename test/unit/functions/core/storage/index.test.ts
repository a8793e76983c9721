import { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../../../functions/core/errors.ts';
import { createS3Client, FileStorage, openStorage, S3Storage, StorageKeyError, storageDisplay } from '../../../../../functions/core/storage/index.ts';

describe('openStorage', () => {
  it('opens s3:// and file:// URLs with a normalised display form', () => {
    const client = new S3Client({ region: 'us-east-1' });
    const s3 = openStorage('s3://my-bucket/backups/prod/', { s3Client: client });
    expect(s3).toBeInstanceOf(S3Storage);
    expect(s3.url).toBe('s3://my-bucket/backups/prod');
    expect((s3 as S3Storage).prefix).toBe('backups/prod');
    expect(openStorage('s3://my-bucket', { s3Client: client }).url).toBe('s3://my-bucket');

    const file = openStorage('file:///var/lib/pgops/');
    expect(file).toBeInstanceOf(FileStorage);
    expect(file.url).toBe('file:///var/lib/pgops');
    client.destroy();
  });

  it('refuses anything else with a ConfigError that echoes no credentials', () => {
    const bad = [
      '',
      '/var/lib/pgops',
      'backups',
      'https://user:hunter22@example.com/bucket',
      's3://Bad_Bucket/x',
      's3://bucket/a//b',
      's3://bucket/a/../b',
      's3://AKIAEXAMPLE:s3cr3tvalue@bucket/prefix',
      's3://bucket/prefix?token=abc123secret',
      'file://remote/path',
    ];
    for (const url of bad) {
      let err: unknown;
      try {
        openStorage(url);
      } catch (e) {
        err = e;
      }
      expect(err, url).toBeInstanceOf(ConfigError);
      const message = (err as Error).message;
      expect(message, url).toContain('s3://bucket/prefix or file:///absolute/path');
      for (const secret of ['hunter22', 's3cr3tvalue', 'abc123secret']) expect(message, url).not.toContain(secret);
    }
    expect(() => openStorage('/var/lib/pgops')).toThrow('file:///var/lib/pgops');
  });

  it('builds an S3-compatible client: path style, checksums only when required, retries', async () => {
    const client = createS3Client({ endpoint: 'http://127.0.0.1:9', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
    expect(client.config.forcePathStyle).toBe(true);
    expect(await client.config.requestChecksumCalculation()).toBe('WHEN_REQUIRED');
    expect(await client.config.responseChecksumValidation()).toBe('WHEN_REQUIRED');
    expect(await client.config.maxAttempts()).toBe(5);
    expect((await client.config.retryStrategy()).constructor.name).toBe('StandardRetryStrategy');
    expect(await client.config.region()).toBe('us-east-1');
    client.destroy();

    const aws = createS3Client({ region: 'eu-west-1' });
    expect(aws.config.forcePathStyle).toBeFalsy();
    expect(await aws.config.region()).toBe('eu-west-1');
    aws.destroy();

    const viaOpen = openStorage('s3://bucket/p', { s3Endpoint: 'http://127.0.0.1:9' }) as S3Storage;
    expect(viaOpen).toBeInstanceOf(S3Storage);
  });

  it('S3Storage validates keys like local storage does', async () => {
    const client = new S3Client({ region: 'us-east-1' });
    const storage = new S3Storage(client, 's3://bucket/p');
    for (const key of ['', '/abs', 'a/../b', 'a//b', 'a/']) {
      await expect(storage.getBytes(key), key).rejects.toBeInstanceOf(StorageKeyError);
    }
    await expect(storage.list('../')).rejects.toBeInstanceOf(StorageKeyError);
    client.destroy();
  });

  it('storageDisplay drops credentials, query and fragment', () => {
    expect(storageDisplay('s3://key:secret@bucket/prefix?x=1#y')).toBe('s3://bucket/prefix');
    expect(storageDisplay('file:///var/lib/pgops')).toBe('file:///var/lib/pgops');
    expect(storageDisplay('bucket-without-scheme user:pw@host')).not.toContain('pw@');
  });
});
