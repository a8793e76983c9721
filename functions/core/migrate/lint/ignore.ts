// Ignore comments: `-- pgops:lint-ignore rule-a, rule-b` on the comment line(s) directly above a
// statement, `-- pgops:lint-ignore-file rule-a` anywhere in a file. Anything after a further `--`
// is the reason, for the reader.

const STATEMENT = /^\s*--\s*pgops:lint-ignore\s+(.*)$/;
const FILE = /^\s*(?:--|\/\/)\s*pgops:lint-ignore-file\s+(.*)$/gm;

function ruleIds(list: string): string[] {
  const withoutReason = list.split('--')[0]!;
  return withoutReason.split(/[\s,]+/).map((t) => t.replace(/[:;.]+$/, '')).filter((t) => /^[a-z][a-z0-9-]*$/.test(t));
}

/** Rules a file ignores everywhere (in a .js migration the comment may also start with `//`). */
export function fileIgnores(content: string): Set<string> {
  const ids = new Set<string>();
  for (const m of content.matchAll(FILE)) for (const id of ruleIds(m[1]!)) ids.add(id);
  return ids;
}

/** Rules ignored for the statement whose first token is on `line` (1-based) of `lines`. */
export function statementIgnores(lines: readonly string[], line: number): Set<string> {
  const ids = new Set<string>();
  for (let i = line - 2; i >= 0; i--) {
    const text = lines[i]!;
    if (!/^\s*--/.test(text)) break;
    const m = STATEMENT.exec(text);
    if (m) for (const id of ruleIds(m[1]!)) ids.add(id);
  }
  return ids;
}
