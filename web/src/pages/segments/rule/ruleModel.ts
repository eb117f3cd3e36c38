// The segment rule language (userloop.profile.rules) as the builder edits it: groups ({"all": […]},
// {"any": […]}, {"not": rule}) and typed conditions. The builder keeps the rule as the API's JSON, so what is saved
// is what was shown; these pure functions add, change and remove parts of it by path.

export type Scalar = string | number | boolean;
export type Value = Scalar | Scalar[] | null;

export interface Window {
  last?: number;
  from?: string;
  to?: string;
}

export interface ValueCondition {
  type: "property" | "tag" | "model";
  property?: string;
  tag?: string;
  model?: string;
  field?: string;
  op: string;
  value?: Value;
  on?: unknown;
}

export interface SegmentCondition {
  type: "segment";
  segment: number;
  member: boolean;
}

export interface Comparison {
  op: string;
  value: number | number[];
}

export interface EventCondition {
  type: "event";
  event: string;
  did?: boolean;
  count?: Comparison;
  window: Window;
  filters?: unknown[];
}

export interface FirstTimeCondition {
  type: "first_time";
  event: string;
  window: Window;
  filters?: unknown[];
}

export interface StoppedCondition {
  type: "stopped";
  event: string;
  days: number;
  filters?: unknown[];
}

export interface OtherCondition {
  type: "sequence" | "regular" | "restarted";
  [key: string]: unknown;
}

export type Condition =
  | ValueCondition
  | SegmentCondition
  | EventCondition
  | FirstTimeCondition
  | StoppedCondition
  | OtherCondition;

export type Rule = { all: Rule[] } | { any: Rule[] } | { not: Rule } | Condition;
export type Group = { all: Rule[] } | { any: Rule[] };

/** The condition types the builder offers a form for (others are edited as JSON). */
export const CONDITION_TYPES = ["tag", "property", "model", "event", "first_time", "stopped", "segment"] as const;
export type ConditionType = (typeof CONDITION_TYPES)[number];

export const VALUE_OPS = [
  "eq", "neq", "in", "not_in", "gt", "gte", "lt", "lte", "between", "contains", "not_contains", "is_set",
  "is_not_set", "in_last_days", "in_next_days", "before_days_ago", "anniversary_in_next_days",
] as const;
export const COUNT_OPS = ["gte", "gt", "lte", "lt", "eq", "between"] as const;
const LIST_OPS = new Set(["in", "not_in"]);
const NO_VALUE_OPS = new Set(["is_set", "is_not_set"]);
const DAY_OPS = new Set(["in_last_days", "in_next_days", "before_days_ago", "anniversary_in_next_days"]);

/** What a value operator takes: nothing, one value, a list, two values (between), or a number of days. */
export function valueShape(op: string): "none" | "one" | "list" | "range" | "days" {
  if (NO_VALUE_OPS.has(op)) return "none";
  if (LIST_OPS.has(op)) return "list";
  if (op === "between") return "range";
  if (DAY_OPS.has(op)) return "days";
  return "one";
}

export const isGroup = (rule: Rule): rule is Group => "all" in rule || "any" in rule;
export const isNot = (rule: Rule): rule is { not: Rule } => "not" in rule && !("type" in rule);
export const groupParts = (group: Group): Rule[] => ("all" in group ? group.all : group.any);
export const groupKind = (group: Group): "all" | "any" => ("all" in group ? "all" : "any");

/** Any rule as a top-level group (a single condition becomes "all of [it]"), so the builder always edits a group. */
export function asGroup(rule: Rule | null | undefined): Group {
  if (!rule) return { all: [] };
  return isGroup(rule) ? rule : { all: [rule] };
}

export function makeGroup(kind: "all" | "any", parts: Rule[]): Group {
  return kind === "all" ? { all: parts } : { any: parts };
}

/** A fresh condition of `type`, filled enough to be valid once its name is picked. */
export function newCondition(type: ConditionType): Condition {
  switch (type) {
    case "tag":
      return { type: "tag", tag: "", op: "eq", value: "" };
    case "property":
      return { type: "property", property: "", op: "eq", value: "" };
    case "model":
      return { type: "model", model: "", field: "", op: "eq", value: "" };
    case "event":
      return { type: "event", event: "", did: true, count: { op: "gte", value: 1 }, window: { last: 30 } };
    case "first_time":
      return { type: "first_time", event: "", window: { last: 7 } };
    case "stopped":
      return { type: "stopped", event: "", days: 30 };
    case "segment":
      return { type: "segment", segment: 0, member: true };
  }
}

/** A path into a rule: the indices of parts from the top group down ("not" wrappers are part of an item). */
export type Path = number[];

function mapParts(group: Group, fn: (parts: Rule[]) => Rule[]): Group {
  return makeGroup(groupKind(group), fn(groupParts(group)));
}

/** `group` with the item at `path` replaced by `next` (or removed when `next` is null). */
export function updateAt(group: Group, path: Path, next: Rule | null): Group {
  const [head, ...rest] = path;
  return mapParts(group, (parts) => {
    if (rest.length === 0) {
      return next === null ? parts.filter((_, i) => i !== head) : parts.map((p, i) => (i === head ? next : p));
    }
    return parts.map((p, i) => {
      if (i !== head) return p;
      const negated = isNot(p);
      const inner = negated ? p.not : p;
      if (!isGroup(inner)) return p;
      const updated = updateAt(inner, rest, next);
      return negated ? { not: updated } : updated;
    });
  });
}

export function appendAt(group: Group, path: Path, item: Rule): Group {
  if (path.length === 0) return mapParts(group, (parts) => [...parts, item]);
  const target = getAt(group, path);
  const negated = target && isNot(target);
  const inner = negated ? (target as { not: Rule }).not : target;
  if (!inner || !isGroup(inner)) return group;
  const grown = mapParts(inner, (parts) => [...parts, item]);
  return updateAt(group, path, negated ? { not: grown } : grown);
}

export function getAt(group: Group, path: Path): Rule | undefined {
  let node: Rule | undefined = group;
  for (const i of path) {
    if (!node) return undefined;
    const inner: Rule = isNot(node) ? node.not : node;
    if (!isGroup(inner)) return undefined;
    node = groupParts(inner)[i];
  }
  return node;
}

/** Wrap an item in {"not": …}, or unwrap it. */
export const toggleNot = (item: Rule): Rule => (isNot(item) ? item.not : { not: item });

/**
 * A value typed by the field it is compared with: numbers for numeric fields (and for text that looks like a
 * number when the type is unknown), true/false for boolean ones, text otherwise.
 */
export function coerce(text: string, type: string | undefined): Scalar {
  const t = (type ?? "").toLowerCase();
  const trimmed = text.trim();
  if (t === "bool" || t === "boolean") {
    if (trimmed === "true") return true;
    if (trimmed === "false") return false;
    return text;
  }
  const numeric = /^-?\d+(\.\d+)?$/.test(trimmed);
  if ((t === "number" || t === "double" || t === "int" || t === "integer" || t === "") && numeric) {
    return Number(trimmed);
  }
  return text;
}

/** The value a condition should hold after its operator changed from `before` to `op` (kept when it still fits). */
export function valueForOp(op: string, value: Value | undefined): Value | undefined {
  const shape = valueShape(op);
  const list = Array.isArray(value) ? value : value === null || value === undefined || value === "" ? [] : [value];
  switch (shape) {
    case "none":
      return undefined;
    case "list":
      return list;
    case "range":
      return [list[0] ?? 0, list[1] ?? 0];
    case "days":
      return typeof value === "number" && Number.isInteger(value) && value >= 1 ? value : 7;
    default:
      return list[0] ?? "";
  }
}

/** How many conditions a rule holds (the API allows 100). */
export function countConditions(rule: Rule): number {
  if (isNot(rule)) return countConditions(rule.not);
  if (isGroup(rule)) return groupParts(rule).reduce((n, r) => n + countConditions(r), 0);
  return 1;
}

/** Whether a value condition has the value its operator needs (a blank is still being typed). */
function hasValue(c: ValueCondition): boolean {
  const shape = valueShape(c.op);
  if (shape === "none" || shape === "days") return true;
  if (shape === "list") return Array.isArray(c.value) && c.value.length > 0;
  if (shape === "range") return Array.isArray(c.value) && c.value.every((v) => v !== "");
  return c.value !== "" && c.value !== null && c.value !== undefined;
}

/**
 * Whether every condition names what it reads (a tag, a property, an event…): the builder only asks for an
 * estimate of a rule that could be valid, so a half-typed condition does not flash an error.
 */
export function isComplete(rule: Rule): boolean {
  if (isNot(rule)) return isComplete(rule.not);
  if (isGroup(rule)) return groupParts(rule).every(isComplete);
  const c = rule as Condition;
  switch (c.type) {
    case "tag":
      return !!(c as ValueCondition).tag && hasValue(c as ValueCondition);
    case "property":
      return !!(c as ValueCondition).property && hasValue(c as ValueCondition);
    case "model":
      return !!(c as ValueCondition).model && !!(c as ValueCondition).field && hasValue(c as ValueCondition);
    case "segment":
      return (c as SegmentCondition).segment > 0;
    case "event":
    case "first_time":
    case "stopped":
      return !!(c as EventCondition).event;
    default:
      return true;
  }
}
