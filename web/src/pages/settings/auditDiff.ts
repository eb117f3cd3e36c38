// The audit log's before/after as a readable list of changes: one row per leaf path that was added, removed or
// changed ("tiers.high.users: 621 → 640"), instead of two JSON blobs to compare by eye.
export type ChangeKind = "added" | "removed" | "changed";

export interface Change {
  path: string;
  kind: ChangeKind;
  before?: unknown;
  after?: unknown;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Leaf values by path: {"a": {"b": [1]}} → {"a.b[0]": 1}; empty objects and arrays are leaves. */
export function flatten(value: unknown, prefix = "", out: Map<string, unknown> = new Map()): Map<string, unknown> {
  if (Array.isArray(value) && value.length) value.forEach((v, i) => flatten(v, `${prefix}[${i}]`, out));
  else if (isObject(value) && Object.keys(value).length) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else out.set(prefix || "·", value);
  return out;
}

/** The changes from `before` to `after` (null/undefined on either side: everything added or removed), in the
 * order the paths first appear. */
export function diffJson(before: unknown, after: unknown): Change[] {
  const a = before === null || before === undefined ? new Map<string, unknown>() : flatten(before);
  const b = after === null || after === undefined ? new Map<string, unknown>() : flatten(after);
  const changes: Change[] = [];
  for (const [path, old] of a) {
    if (!b.has(path)) changes.push({ path, kind: "removed", before: old });
    else if (JSON.stringify(old) !== JSON.stringify(b.get(path))) {
      changes.push({ path, kind: "changed", before: old, after: b.get(path) });
    }
  }
  for (const [path, value] of b) if (!a.has(path)) changes.push({ path, kind: "added", after: value });
  return changes;
}

/** A value as one short line of text (strings quoted as JSON does, long ones cut). */
export function showValue(value: unknown, max = 120): string {
  if (value === undefined) return "";
  const text = JSON.stringify(value) ?? String(value);
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
