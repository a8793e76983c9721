// pg_receivewal's command line: the password only in the environment, never a prompt, no slot
// (the receiver holds it), no reconnect loop, and --synchronous only when asked.
import { describe, expect, it } from 'vitest';
import { parseDatabaseUrl } from '../../../../../functions/core/db.ts';
import { buildPgReceivewalCommand, stoppedCleanly } from '../../../../../functions/core/wal/receive-stream.ts';

const target = parseDatabaseUrl('postgres://archiver:s3cr3t-pw@db.internal:6432/orders?sslmode=require');

describe('buildPgReceivewalCommand', () => {
  it('passes the password in PGPASSWORD only, and connection details in the environment', () => {
    const cmd = buildPgReceivewalCommand(target, { binDir: '/usr/lib/postgresql/15/bin', spool: '/tmp/spool', synchronous: true });
    expect(cmd.command).toBe('/usr/lib/postgresql/15/bin/pg_receivewal');
    expect(cmd.args.join(' ')).not.toMatch(/s3cr3t|archiver|db\.internal|6432|postgres:\/\//);
    expect(cmd.env).toMatchObject({ PGPASSWORD: 's3cr3t-pw', PGUSER: 'archiver', PGHOST: 'db.internal', PGPORT: '6432', PGSSLMODE: 'require', PGAPPNAME: 'pgops-wal-receive' });
  });

  it('never prompts, never loops, never takes the slot, and is synchronous only when asked', () => {
    const sync = buildPgReceivewalCommand(target, { binDir: '/b', spool: '/tmp/spool', synchronous: true }).args;
    expect(sync).toEqual(expect.arrayContaining(['--directory', '/tmp/spool', '--no-password', '--no-loop', '--synchronous']));
    expect(sync.some((a) => a.startsWith('--slot') || a === '-S')).toBe(false);
    expect(buildPgReceivewalCommand(target, { binDir: '/b', spool: '/s', synchronous: false }).args).not.toContain('--synchronous');
  });
});

describe('stoppedCleanly', () => {
  it('accepts exit 0 and death by the stop signals, nothing else', () => {
    expect(stoppedCleanly({ code: 0, signal: null, stderr: '' })).toBe(true);
    expect(stoppedCleanly({ code: null, signal: 'SIGINT', stderr: '' })).toBe(true);
    expect(stoppedCleanly({ code: null, signal: 'SIGTERM', stderr: '' })).toBe(true);
    expect(stoppedCleanly({ code: 1, signal: null, stderr: 'pg_receivewal: error: ...' })).toBe(false);
    expect(stoppedCleanly({ code: null, signal: 'SIGKILL', stderr: '' })).toBe(false);
    expect(stoppedCleanly({ code: null, signal: null, stderr: '', spawnError: new Error('ENOENT') })).toBe(false);
  });
});
