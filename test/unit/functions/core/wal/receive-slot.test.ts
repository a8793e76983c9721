// Slot names: the default one derived from the database id, and a bad --slot refused as usage (exit 2).
import { describe, expect, it } from 'vitest';
import { checkSlotName, defaultSlotName } from '../../../../../functions/core/wal/receive-slot.ts';
import { WalSlotError } from '../../../../../functions/core/wal/errors.ts';

describe('slot names', () => {
  it('derives a valid slot name from any database id', () => {
    expect(defaultSlotName('orders')).toBe('pgops_orders');
    expect(defaultSlotName('Orders-EU.v2')).toBe('pgops_orders_eu_v2');
    const long = defaultSlotName('x'.repeat(128));
    expect(long).toHaveLength(63);
    expect(checkSlotName(long)).toBe(long);
  });

  it('refuses a name PostgreSQL would refuse, as a usage error that pages (the receiver is a service)', () => {
    for (const bad of ['', 'Upper', 'with-dash', 'a'.repeat(64), "x'; DROP"]) {
      const err = (() => { try { checkSlotName(bad); } catch (e) { return e; } return undefined; })();
      expect(err).toBeInstanceOf(WalSlotError);
      expect((err as WalSlotError).exitCode).toBe(2);
      expect((err as WalSlotError).alert).toBe('critical');
    }
  });
});
