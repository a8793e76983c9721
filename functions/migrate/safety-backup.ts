// How the migrate function takes migrate.backupBefore's backup: it has neither pg_dump nor rights on
// the bucket, so it invokes the backup function (which has both) and waits for its manifest.
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { instrumented } from '../core/aws/clients.ts';
import { BackupError } from '../core/backup/errors.ts';
import { errorMessage } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import type { SafetyBackup } from '../core/migrate/safety-point.ts';
import { redactString } from '../core/redact.ts';
import type { MigrateBackup, Runtime } from '../core/runtime.ts';

export type LambdaFactory = () => LambdaClient;

// One attempt: a retried invoke would start a second backup.
const defaultLambda: LambdaFactory = () => instrumented(new LambdaClient({ maxAttempts: 1 }));

/** The backup function's answer: a manifest when it backed up inline, a task when it went to Fargate. */
interface BackupAnswer { id?: unknown; dispatched?: unknown; taskArn?: unknown; databaseBytes?: unknown; errorMessage?: unknown }

function parseAnswer(payload: Uint8Array | undefined): BackupAnswer {
  const text = payload ? Buffer.from(payload).toString('utf8') : '';
  try {
    const parsed: unknown = JSON.parse(text);
    return parsed !== null && typeof parsed === 'object' ? parsed : {};
  } catch {
    return {};
  }
}

/** Invoke the backup function for this database and wait: its backup id, or an error saying why there is none. */
export function backupThroughFunction(lambda: LambdaFactory, functionName: string, databaseId: string, logger: Logger): SafetyBackup {
  return async () => {
    logger.info(`invoking the backup function ${functionName} for a full backup of ${databaseId}`);
    let response;
    try {
      response = await lambda().send(new InvokeCommand({
        FunctionName: functionName,
        InvocationType: 'RequestResponse',
        Payload: Buffer.from(JSON.stringify({ database: databaseId, mode: 'auto' })),
      }));
    } catch (err) {
      throw new BackupError(`could not invoke the backup function ${functionName}: ${redactString(errorMessage(err))} (the migrate function needs lambda:InvokeFunction on it and a route to the Lambda API)`, { cause: err });
    }
    const answer = parseAnswer(response.Payload);
    if (response.FunctionError) {
      throw new BackupError(`the backup function ${functionName} failed: ${redactString(typeof answer.errorMessage === 'string' ? answer.errorMessage : response.FunctionError)}`);
    }
    if (answer.dispatched === 'fargate') {
      throw new BackupError(`the database is larger than backup.inlineMaxBytes, so the backup function started the Fargate task ${String(answer.taskArn)} instead of backing up inline, and the migrate function cannot wait for it. Once that backup is listed (pgops backups list), run the migration from the CLI (pgops migrate up --storage ...: it takes its own backup), or set migrate.backupBefore to "never" for this database`);
    }
    if (typeof answer.id !== 'string') throw new BackupError(`the backup function ${functionName} answered without a backup id`);
    return { id: answer.id };
  };
}

/** migrate.backupBefore through the backup function, when the stack names one (PGOPS_BACKUP_FUNCTION). */
export function migrateBackupOf(rt: Runtime, lambda: LambdaFactory = defaultLambda): MigrateBackup {
  const functionName = rt.settings.backupFunction;
  if (!functionName) return {};
  return { takeBackup: () => backupThroughFunction(lambda, functionName, rt.databaseId(), rt.logger)() };
}
