import { describe, expect, it } from 'vitest';
import { parseFileConfig } from '../../../../../../functions/core/config.ts';

describe('config migrate.lint', () => {
  it('defaults to "error" and accepts "warn" and "off"', () => {
    expect(parseFileConfig({}).config?.migrate.lint).toBe('error');
    expect(parseFileConfig({ migrate: { lint: 'warn' } }).config?.migrate.lint).toBe('warn');
    expect(parseFileConfig({ migrate: { lint: 'off' } }).config?.migrate.lint).toBe('off');
  });

  it('names the field of a bad value, along with every other bad field', () => {
    const r = parseFileConfig({ migrate: { lint: 'strict', lockWaitSeconds: -1 } });
    expect(r.config).toBeUndefined();
    expect(r.issues).toEqual(expect.arrayContaining([expect.stringMatching(/^config: migrate\.lint: .*"error".*"warn".*"off"/), expect.stringMatching(/^config: migrate\.lockWaitSeconds: /)]));
  });
});
