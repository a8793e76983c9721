// The job's pure parts: the restore_command it writes (this CLI, the archive's location, never a
// password) and a base backup manifest as recovery reads it.
import { describe, expect, it } from 'vitest';
import { describeOutput, restoreCommand } from '../../../../../functions/core/pitr/job.ts';
import type { Storage } from '../../../../../functions/core/storage/types.ts';

const storage = (url: string) => ({ url }) as Storage;

describe('restoreCommand', () => {
  it('runs `pgops wal fetch %f %p` with the archive\'s location, each word quoted for the shell', () => {
    expect(restoreCommand({ storage: storage('s3://backups/pgops'), walFetch: { argv: ['/usr/bin/node', '/app/pgops.mjs'], s3Endpoint: 'http://127.0.0.1:9000' } }, 'orders'))
      .toBe("PGOPS_STORAGE='s3://backups/pgops' PGOPS_DATABASE_ID='orders' PGOPS_S3_ENDPOINT='http://127.0.0.1:9000' '/usr/bin/node' '/app/pgops.mjs' --quiet wal fetch %f %p");
  });

  it('escapes quotes for the shell and percent signs for PostgreSQL', () => {
    expect(restoreCommand({ storage: storage("file:///srv/it's%20here"), walFetch: { argv: ['/opt/node', '/x/pgops.mjs'] } }, 'db'))
      .toBe("PGOPS_STORAGE='file:///srv/it'\\''s%%20here' PGOPS_DATABASE_ID='db' '/opt/node' '/x/pgops.mjs' --quiet wal fetch %f %p");
  });
});

describe('describeOutput', () => {
  it('says what the recovery will produce', () => {
    expect(describeOutput({ kind: 'target-db', database: 'o', create: true, clean: false, tables: ['t'], sourceDb: 'orders' })).toBe('the recovered database orders restored into o (created), tables t');
    expect(describeOutput({ kind: 'export' })).toBe('a logical backup of the recovered database (the connection\'s) in storage');
    expect(describeOutput({ kind: 'data-dir', dir: '/d' })).toBe('the recovered data directory at /d');
  });
});
