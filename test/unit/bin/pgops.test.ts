import { describe, expect, it } from 'vitest';
import type { Command } from 'commander';
import { buildProgram } from '../../../bin/pgops.ts';
import type { Io } from '../../../bin/commands/run-command.ts';

const quiet: Io = { out: () => {}, err: () => {}, isTTY: false };

describe('the pgops program', () => {
  it('takes --database-id as a global option, handed to every command with the other settings flags', async () => {
    const program = buildProgram(quiet);
    const status = program.commands.find((c) => c.name() === 'migrate')!.commands.find((c) => c.name() === 'status')!;
    let seen: Record<string, unknown> = {};
    status.action((_o: unknown, cmd: Command) => { seen = cmd.optsWithGlobals(); });
    await program.parseAsync(['node', 'pgops', '--database-id', 'auth_prod', 'migrate', 'status', '--database-url', 'postgres://a@h/d']);
    expect(seen).toMatchObject({ databaseId: 'auth_prod', databaseUrl: 'postgres://a@h/d' });
  });
});
