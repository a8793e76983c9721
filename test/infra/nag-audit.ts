// What cdk-nag would report with every acknowledgment ignored, and which acknowledgments match
// nothing it reports. cdk-nag 3 reports only unacknowledged findings (no suppression report), so the
// AwsSolutions pack runs here with its rules recorded before acknowledgments apply: an
// acknowledgment is live when a finding with its exact id is on its construct or below it (where
// cdk-nag would look for it), and dead otherwise (the finding it was written for went away).
import { Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks, NagRuleCompliance, type IApplyRule } from 'cdk-nag';
import type { IConstruct } from 'constructs';

export interface Finding {
  /** The resource's construct path. */
  path: string;
  /** The id an acknowledgment must name: AwsSolutions-IAM5 or AwsSolutions-IAM5[Resource::...]. */
  id: string;
}

export interface Acknowledged {
  /** The acknowledging construct's path. */
  path: string;
  /** The id, without CDK's "Annotation::" prefix. */
  id: string;
  reason: string;
}

/** AwsSolutionsChecks with each rule's result recorded, acknowledged or not. */
class RecordingChecks extends AwsSolutionsChecks {
  readonly findings: Finding[] = [];
  /** The construct paths of the resources the rules looked at (CfnRole, CfnFunction...: not raw CfnResources). */
  readonly checked = new Set<string>();

  protected override applyRule(params: IApplyRule): void {
    const ruleId = `${this.readPackName}-${params.ruleSuffixOverride ?? params.rule.name}`;
    const path = params.node.node.path;
    let result;
    try {
      result = params.rule(params.node);
    } catch {
      // cdk-nag reports a rule that throws as a finding of the rule itself.
      result = NagRuleCompliance.NON_COMPLIANT;
    }
    if (result !== NagRuleCompliance.NOT_APPLICABLE) this.checked.add(path);
    if (result === NagRuleCompliance.NON_COMPLIANT) this.findings.push({ path, id: ruleId });
    else if (Array.isArray(result)) for (const f of result) this.findings.push({ path, id: `${ruleId}[${f}]` });
  }
}

/** Every AwsSolutions finding under `scope`, acknowledgments ignored. */
export function allFindings(scope: IConstruct): Finding[] {
  const checks = new RecordingChecks();
  checks.validateScope(scope);
  return checks.findings;
}

/** The resources under `scope` that at least one AwsSolutions rule applies to: what cdk-nag can see. */
export function checkedResources(scope: IConstruct): string[] {
  const checks = new RecordingChecks();
  checks.validateScope(scope);
  return [...checks.checked];
}

/** Every acknowledgment recorded on `scope` and below. */
export function acknowledgments(scope: IConstruct): Acknowledged[] {
  return scope.node.findAll().flatMap((c) => c.node.metadata
    .filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
    .flatMap((m) => Object.entries(m.data as Record<string, string>).map(([id, reason]) => ({ path: c.node.path, id: id.replace(/^annotation::/i, ''), reason }))));
}

/** Acknowledgments that match no finding on their construct or below it. */
export function deadAcknowledgments(scope: IConstruct, findings: Finding[] = allFindings(scope)): Acknowledged[] {
  return acknowledgments(scope).filter((a) => !findings.some((f) => f.id === a.id && (f.path === a.path || f.path.startsWith(`${a.path}/`))));
}
