import { describe, expect, it } from 'vitest';
import { healthExitCode, worstStatus } from '../../../../../functions/core/health/types.ts';

describe('health status', () => {
  it('overall is the worst: critical > unknown > warning > ok, info counts as ok', () => {
    expect(worstStatus(['ok', 'info'])).toBe('ok');
    expect(worstStatus(['ok', 'warning', 'info'])).toBe('warning');
    expect(worstStatus(['warning', 'unknown'])).toBe('unknown');
    expect(worstStatus(['unknown', 'critical', 'warning'])).toBe('critical');
    expect([healthExitCode('ok'), healthExitCode('warning'), healthExitCode('critical'), healthExitCode('unknown')]).toEqual([0, 1, 2, 3]);
  });

});
