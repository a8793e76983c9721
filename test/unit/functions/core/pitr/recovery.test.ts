// Reading the scratch server's log: what recovery restored, where it stopped, and every line that
// makes it a failure (and the connection refusals that do not).
import { describe, expect, it } from 'vitest';
import { expandRestoreCommand, scanLogLines } from '../../../../../functions/core/pitr/recovery.ts';

const at = (line: string) => `2026-12-01 11:33:12.794 UTC [27643] ${line}`;

describe('scanLogLines', () => {
  it('collects restored files, the stop, the new timeline and the last transaction of a successful recovery', () => {
    const scan = scanLogLines([
      at('LOG:  starting point-in-time recovery to WAL location (LSN) "0/30002C8"'),
      at('LOG:  restored log file "000000010000000000000002" from archive'),
      at('LOG:  restored log file "000000010000000000000003" from archive'),
      at('LOG:  recovery stopping after WAL location (LSN) "0/30002C8"'),
      at('LOG:  last completed transaction was at log time 2026-12-01 11:33:08.997729+00'),
      at('LOG:  restored log file "00000002.history" from archive'),
      at('LOG:  selected new timeline ID: 3'),
      at('LOG:  database system is ready to accept connections'),
    ]);
    expect(scan).toEqual({
      restored: ['000000010000000000000002', '000000010000000000000003', '00000002.history'],
      fetchErrors: [],
      stop: 'recovery stopping after WAL location (LSN) "0/30002C8"',
      lastTransactionAt: '2026-12-01 11:33:08.997729+00',
      newTimeline: 3,
    });
  });

  it('takes the first FATAL or PANIC as the failure, with pgops\' own error lines beside it', () => {
    const scan = scanLogLines([
      'pgops: error: wal fetch 000000010000000000000003 failed (recovery must stop here, not end): x does not match its checksum',
      at('FATAL:  could not restore file "000000010000000000000003" from archive: command not executable'),
      at('PANIC:  later'),
    ]);
    expect(scan.failure).toBe('FATAL: could not restore file "000000010000000000000003" from archive: command not executable');
    expect(scan.fetchErrors).toEqual(['pgops: error: wal fetch 000000010000000000000003 failed (recovery must stop here, not end): x does not match its checksum']);
    expect(scanLogLines([at('FATAL:  recovery ended before configured recovery target was reached')]).failure).toBe('FATAL: recovery ended before configured recovery target was reached');
    expect(scanLogLines([at('PANIC:  could not locate a valid checkpoint record')]).failure).toMatch(/^PANIC: /);
  });

  it('does not take a refused connection for a failed recovery', () => {
    expect(scanLogLines([
      at('FATAL:  the database system is starting up'),
      at('FATAL:  the database system is not yet accepting connections'),
      at('FATAL:  role "app" does not exist'),
    ]).failure).toBeUndefined();
  });

  it('accumulates across reads, as the log grows', () => {
    const scan = scanLogLines([at('LOG:  restored log file "000000010000000000000002" from archive')]);
    scanLogLines([at('LOG:  restored log file "000000010000000000000003" from archive')], scan);
    expect(scan.restored).toHaveLength(2);
  });
});

describe('expandRestoreCommand', () => {
  it('expands %f, %p and %% as PostgreSQL does', () => {
    expect(expandRestoreCommand("X='50%%' pgops wal fetch %f %p", '000000010000000000000002', '/s/check')).toBe("X='50%' pgops wal fetch 000000010000000000000002 /s/check");
  });
});
