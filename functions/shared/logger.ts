// Structured JSON logs in Lambda through Powertools, with the same redaction as the CLI logger.
// Its own module so that the CLI does not load Powertools.
import { Logger as PowertoolsLogger } from '@aws-lambda-powertools/logger';
import type { LogLevel, Logger } from '../core/logger.ts';
import { redactFields, redactString } from '../core/redact.ts';

export function createLambdaLogger(serviceName: string, level: LogLevel = 'info'): Logger {
  const pt = new PowertoolsLogger({ serviceName, logLevel: level === 'silent' ? 'SILENT' : level.toUpperCase() as 'DEBUG' | 'INFO' | 'WARN' | 'ERROR' });
  return {
    debug: (m, f) => pt.debug(redactString(m), redactFields(f ?? {})),
    info: (m, f) => pt.info(redactString(m), redactFields(f ?? {})),
    warn: (m, f) => pt.warn(redactString(m), redactFields(f ?? {})),
    error: (m, f) => pt.error(redactString(m), redactFields(f ?? {})),
  };
}
