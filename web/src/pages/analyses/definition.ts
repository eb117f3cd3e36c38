// Analysis definitions as the API's query.run takes them (src/userloop/query/kinds/*: pydantic models with a
// `kind` discriminator). The API types `definition` as a free object, so the console keeps the shapes here and
// turns a form's state into a definition the API accepts (empty pieces left out, so the API's defaults apply).

export const KINDS = [
  "trends", "funnel", "retention", "paths", "lifecycle", "stickiness", "distribution", "interval", "attribution",
  "ltv", "drilldown",
] as const;
export type Kind = (typeof KINDS)[number];

export type Source = "event" | "user";
export type Scalar = string | number | boolean;
export const FILTER_OPS = [
  "eq", "neq", "in", "not_in", "gt", "gte", "lt", "lte", "between", "contains", "not_contains", "is_set", "is_not_set",
] as const;
export type FilterOp = (typeof FILTER_OPS)[number];
export type TimeUnit = "minute" | "hour" | "day" | "week";

export interface DateRange {
  from?: string;
  to?: string;
  last?: number;
  include_current?: boolean;
}
export interface Filter {
  property: string;
  source?: Source;
  op: FilterOp;
  value?: Scalar | Scalar[] | null;
}
export interface EventRef {
  event: string;
  filters?: Filter[];
  name?: string | null;
}
export interface Breakdown {
  property: string;
  source?: Source;
  bins?: number | null;
  limit?: number;
}
export interface Duration {
  value: number;
  unit: TimeUnit;
}

interface Base {
  date_range: DateRange;
  filters?: Filter[];
}

export const TREND_MATHS = [
  "total", "users", "dau", "wau", "mau", "per_user_avg", "per_user_median", "per_user_max", "sum", "avg", "min",
  "max", "median", "p90", "p99",
] as const;
/** Maths that aggregate a numeric property (the series then needs `property`). */
export const PROPERTY_MATHS = new Set(["sum", "avg", "min", "max", "median", "p90", "p95", "p99"]);

export interface Series extends EventRef {
  math?: string;
  property?: string | null;
}
export interface TrendsDef extends Base {
  kind: "trends";
  series: Series[];
  interval?: "hour" | "day" | "week" | "month";
  breakdown?: Breakdown | null;
  formula?: string | null;
  compare?: boolean;
}
export interface FunnelStep extends EventRef {
  optional?: boolean;
}
export interface FunnelPeopleRequest {
  step: number;
  status: "converted" | "dropped";
  limit?: number;
  breakdown?: string | null;
}
export interface FunnelDef extends Base {
  kind: "funnel";
  steps: FunnelStep[];
  order?: "sequential" | "strict" | "any";
  window?: Duration;
  breakdown?: Breakdown | null;
  trend_interval?: "day" | "week" | "month" | null;
  people?: FunnelPeopleRequest | null;
}
export interface RetentionDef extends Base {
  kind: "retention";
  start: EventRef;
  return_event?: EventRef | null;
  start_type?: "first_time" | "recurring";
  interval?: "day" | "week" | "month";
  periods?: number;
  mode?: "on" | "on_or_after";
  breakdown?: Breakdown | null;
  people?: { cohort: string; period?: number | null; breakdown?: string | null; limit?: number } | null;
}
export interface PathsDef extends Base {
  kind: "paths";
  start?: EventRef | null;
  end?: EventRef | null;
  steps?: number;
  session_gap_minutes?: number;
  exclude?: string[];
  collapse_repeats?: boolean;
  top?: number;
}
export type LifecycleStatus = "new" | "returning" | "resurrecting" | "dormant";
export interface LifecycleDef extends Base {
  kind: "lifecycle";
  event: EventRef;
  interval?: "day" | "week" | "month";
  people?: { bucket: string; status: LifecycleStatus; limit?: number } | null;
}
export interface StickinessDef extends Base {
  kind: "stickiness";
  event: EventRef;
  interval?: "day" | "week" | "month";
  people?: { intervals: number; limit?: number } | null;
}
export interface DistributionDef extends Base {
  kind: "distribution";
  event: EventRef;
  measure?: "count" | "sum";
  property?: string | null;
  bins?: number[] | null;
  include_zero?: boolean;
}
export interface IntervalDef extends Base {
  kind: "interval";
  from_event: EventRef;
  to_event: EventRef;
  max_gap?: Duration;
  per?: "pair" | "person";
}
export const ATTRIBUTION_MODELS = ["first", "last", "linear", "position", "time_decay"] as const;
export interface AttributionDef extends Base {
  kind: "attribution";
  target: EventRef;
  touches: EventRef[];
  lookback?: Duration;
  model?: (typeof ATTRIBUTION_MODELS)[number] | "all";
  value_property?: string | null;
}
export interface LtvDef extends Base {
  kind: "ltv";
  cohort_event?: EventRef;
  cohort_interval?: "day" | "week" | "month";
  value_event: EventRef;
  math?: "sum" | "count";
  value_property?: string | null;
  days?: number[];
}
export interface DrilldownDef extends Base {
  kind: "drilldown";
  series: Series;
  current: DateRange;
  baseline?: DateRange | null;
  dimensions: { property: string; source?: Source }[];
  top?: number;
}

export type Definition =
  | TrendsDef | FunnelDef | RetentionDef | PathsDef | LifecycleDef | StickinessDef | DistributionDef | IntervalDef
  | AttributionDef | LtvDef | DrilldownDef;

/** A first definition of each kind: what the builder shows when the kind is picked. */
export function defaultDefinition(kind: Kind, firstEvent = "", secondEvent = ""): Definition {
  const date_range: DateRange = { last: 30 };
  const ev = (event: string): EventRef => ({ event });
  switch (kind) {
    case "trends":
      return { kind, date_range, series: [{ event: firstEvent, math: "total" }], interval: "day", compare: false };
    case "funnel":
      return { kind, date_range, steps: [ev(firstEvent), ev(secondEvent)], window: { value: 14, unit: "day" } };
    case "retention":
      return { kind, date_range, start: ev(firstEvent), interval: "week", periods: 8 };
    case "paths":
      return { kind, date_range, start: firstEvent ? ev(firstEvent) : null, steps: 5 };
    case "lifecycle":
      return { kind, date_range, event: ev(firstEvent), interval: "day" };
    case "stickiness":
      return { kind, date_range, event: ev(firstEvent), interval: "day" };
    case "distribution":
      return { kind, date_range, event: ev(firstEvent), measure: "count" };
    case "interval":
      return { kind, date_range, from_event: ev(firstEvent), to_event: ev(secondEvent), per: "pair" };
    case "attribution":
      return { kind, date_range, target: ev(secondEvent), touches: [ev(firstEvent)], model: "all" };
    case "ltv":
      return { kind, date_range, value_event: ev(secondEvent), math: "sum", days: [1, 7, 14, 30] };
    case "drilldown":
      return { kind, date_range, series: { event: firstEvent, math: "total" }, current: { last: 7 }, dimensions: [] };
  }
}

/** A filter is complete when it names a property and holds the value its operator needs. */
export function filterComplete(f: Filter): boolean {
  if (!f.property) return false;
  if (f.op === "is_set" || f.op === "is_not_set") return true;
  if (f.op === "in" || f.op === "not_in") return Array.isArray(f.value) && f.value.length > 0;
  if (f.op === "between") return Array.isArray(f.value) && f.value.length === 2 && f.value.every((v) => v !== "");
  return f.value !== undefined && f.value !== null && f.value !== "" && !Array.isArray(f.value);
}

function cleanFilters(filters: Filter[] | undefined): Filter[] | undefined {
  const kept = (filters ?? []).filter(filterComplete).map((f) => {
    const out: Filter = { property: f.property, op: f.op };
    if (f.source && f.source !== "event") out.source = f.source;
    if (f.op !== "is_set" && f.op !== "is_not_set") out.value = f.value;
    return out;
  });
  return kept.length ? kept : undefined;
}

function cleanRef<T extends EventRef>(ref: T): T {
  const out = { ...ref, filters: cleanFilters(ref.filters) };
  if (!out.filters) delete out.filters;
  if (!out.name) delete out.name;
  return out;
}

function cleanBreakdown(b: Breakdown | null | undefined): Breakdown | undefined {
  if (!b || !b.property) return undefined;
  const out: Breakdown = { property: b.property };
  if (b.source && b.source !== "event") out.source = b.source;
  if (b.bins) out.bins = b.bins;
  if (b.limit) out.limit = b.limit;
  return out;
}

/** Keys whose empty value (null, "", []) means "the API's default" and is left out of the request. */
function dropEmpty<T extends object>(obj: T): T {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(obj)) {
    if (value === null || value === undefined || value === "") continue;
    if (Array.isArray(value) && value.length === 0 && key !== "dimensions") continue;
    out[key] = value;
  }
  return out as T;
}

/** The definition the API is sent: incomplete filters and empty options removed, event references cleaned. */
export function toRequest(def: Definition): Definition {
  const base = { ...def, filters: cleanFilters(def.filters) } as Definition;
  switch (base.kind) {
    case "trends":
      return dropEmpty({ ...base, series: base.series.map(cleanRef), breakdown: cleanBreakdown(base.breakdown) });
    case "funnel":
      return dropEmpty({ ...base, steps: base.steps.map(cleanRef), breakdown: cleanBreakdown(base.breakdown) });
    case "retention":
      return dropEmpty({
        ...base, start: cleanRef(base.start), breakdown: cleanBreakdown(base.breakdown),
        return_event: base.return_event?.event ? cleanRef(base.return_event) : undefined,
      });
    case "paths":
      return dropEmpty({
        ...base,
        start: base.start?.event ? cleanRef(base.start) : undefined,
        end: base.end?.event ? cleanRef(base.end) : undefined,
      });
    case "lifecycle":
    case "stickiness":
    case "distribution":
      return dropEmpty({ ...base, event: cleanRef(base.event) });
    case "interval":
      return dropEmpty({ ...base, from_event: cleanRef(base.from_event), to_event: cleanRef(base.to_event) });
    case "attribution":
      return dropEmpty({ ...base, target: cleanRef(base.target), touches: base.touches.map(cleanRef) });
    case "ltv":
      return dropEmpty({
        ...base, value_event: cleanRef(base.value_event),
        cohort_event: base.cohort_event?.event ? cleanRef(base.cohort_event) : undefined,
      });
    case "drilldown": {
      // A drill-down compares `current` with `baseline`: it takes no date_range (the API refuses one).
      const { date_range: _unused, ...rest } = { ...base, series: cleanRef(base.series) };
      void _unused;
      return dropEmpty(rest) as Definition;
    }
  }
}

/** The events a definition needs before it can run (an empty one means the form is not finished). */
export function requiredEvents(def: Definition): string[] {
  switch (def.kind) {
    case "trends":
      return def.series.map((s) => s.event);
    case "funnel":
      return def.steps.map((s) => s.event);
    case "retention":
      return [def.start.event];
    case "paths":
      return [];
    case "lifecycle":
    case "stickiness":
    case "distribution":
      return [def.event.event];
    case "interval":
      return [def.from_event.event, def.to_event.event];
    case "attribution":
      return [def.target.event, ...def.touches.map((t) => t.event)];
    case "ltv":
      return [def.value_event.event];
    case "drilldown":
      return [def.series.event];
  }
}

/** Whether the form holds what the API needs to run it. */
export function isRunnable(def: Definition): boolean {
  if (!requiredEvents(def).every((e) => e)) return false;
  if (def.kind === "drilldown") return def.dimensions.length > 0;
  return true;
}

/** A definition read from a URL or a saved insight: a known kind with its required parts, else null. */
export function parseDefinition(value: unknown): Definition | null {
  if (!value || typeof value !== "object") return null;
  const def = value as Partial<Definition> & { kind?: unknown };
  if (!KINDS.includes(def.kind as Kind)) return null;
  const fallback = defaultDefinition(def.kind as Kind);
  const merged = { ...fallback, ...def } as Definition;
  if (!merged.date_range) merged.date_range = { last: 30 };
  return merged;
}

// "people behind this number" ------------------------------------------------------------------------------------

/** Kinds whose definition takes a `people` request, so their people can become a segment (segments.from_analysis). */
export const PEOPLE_KINDS = new Set<Kind>(["funnel", "retention", "lifecycle", "stickiness"]);

export type PeopleTarget =
  | { kind: "funnel"; step: number; status: "converted" | "dropped"; breakdown?: string | null }
  | { kind: "retention"; cohort: string; period: number | null; breakdown?: string | null }
  | { kind: "lifecycle"; bucket: string; status: LifecycleStatus }
  | { kind: "stickiness"; intervals: number };

/** The definition segments.from_analysis takes: the analysis with a `people` request for the chosen number. */
export function peopleDefinition(def: Definition, target: PeopleTarget): Definition {
  const clean = toRequest(def);
  if (clean.kind !== target.kind) throw new Error(`a ${target.kind} target on a ${clean.kind} analysis`);
  switch (target.kind) {
    case "funnel":
      return dropPeopleNulls({
        ...clean, people: { step: target.step, status: target.status, breakdown: target.breakdown },
      } as Definition);
    case "retention":
      return dropPeopleNulls({
        ...clean, people: { cohort: target.cohort, period: target.period, breakdown: target.breakdown },
      } as Definition);
    case "lifecycle":
      return { ...clean, people: { bucket: target.bucket, status: target.status } } as Definition;
    case "stickiness":
      return { ...clean, people: { intervals: target.intervals } } as Definition;
  }
}

function dropPeopleNulls(def: Definition): Definition {
  const people = (def as { people?: Record<string, unknown> }).people;
  if (!people) return def;
  const kept = Object.fromEntries(Object.entries(people).filter(([, v]) => v !== null && v !== undefined));
  return { ...def, people: kept } as Definition;
}
