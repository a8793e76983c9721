// Every rule of the migration linter, in the order the README's table lists them.
import type { Rule, RuleId } from '../types.ts';
import { addingFieldWithDefault } from './adding-field-with-default.ts';
import { addingNotNullableField } from './adding-not-nullable-field.ts';
import { addingRequiredField } from './adding-required-field.ts';
import { addingSerialPrimaryKeyField } from './adding-serial-primary-key-field.ts';
import { banCharField } from './ban-char-field.ts';
import { banConcurrentIndexCreationInTransaction } from './ban-concurrent-index-creation-in-transaction.ts';
import { banDropColumn } from './ban-drop-column.ts';
import { banDropDatabase } from './ban-drop-database.ts';
import { banDropTable } from './ban-drop-table.ts';
import { banTruncateCascade } from './ban-truncate-cascade.ts';
import { changingColumnType } from './changing-column-type.ts';
import { constraintMissingNotValid } from './constraint-missing-not-valid.ts';
import { disallowedUniqueConstraint } from './disallowed-unique-constraint.ts';
import { identifierTooLong } from './identifier-too-long.ts';
import { notLinted } from './not-linted.ts';
import { preferBigintOverInt } from './prefer-bigint-over-int.ts';
import { preferTextField } from './prefer-text-field.ts';
import { preferTimestamptz } from './prefer-timestamptz.ts';
import { renamingColumn } from './renaming-column.ts';
import { renamingTable } from './renaming-table.ts';
import { requireConcurrentIndexCreation } from './require-concurrent-index-creation.ts';
import { requireConcurrentIndexDeletion } from './require-concurrent-index-deletion.ts';
import { syntaxError } from './syntax-error.ts';
import { transactionNesting } from './transaction-nesting.ts';

export const RULES: readonly Rule[] = [
  requireConcurrentIndexCreation,
  requireConcurrentIndexDeletion,
  constraintMissingNotValid,
  addingRequiredField,
  addingNotNullableField,
  addingFieldWithDefault,
  changingColumnType,
  renamingColumn,
  renamingTable,
  banDropColumn,
  banDropTable,
  banDropDatabase,
  disallowedUniqueConstraint,
  addingSerialPrimaryKeyField,
  banConcurrentIndexCreationInTransaction,
  transactionNesting,
  preferBigintOverInt,
  preferTimestamptz,
  preferTextField,
  banCharField,
  identifierTooLong,
  banTruncateCascade,
  syntaxError,
  notLinted,
];

const BY_ID = new Map<RuleId, Rule>(RULES.map((r) => [r.id, r]));

export function ruleById(id: RuleId): Rule {
  return BY_ID.get(id)!;
}

export function isRuleId(id: string): id is RuleId {
  return BY_ID.has(id as RuleId);
}
