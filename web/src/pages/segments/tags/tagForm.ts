// The tag form as the API's tag definition (tags.create / tags.update), and back. The four kinds an operator
// builds (DOMAIN §3): basic (from a profile property), behaviour (an aggregate of events), result (an outcome of
// events or a model), predictive (a model's output). Parts the form does not show (event filters, bins, an
// explicit window) are kept from the definition being edited.
import type { components } from "../../../api/schema";
import type { ChartOption } from "../../../components/Chart";
import type { Lang } from "../format";

export type CreateTag = components["schemas"]["CreateTag"];
export type TagKind = CreateTag["kind"];
export type TagType = CreateTag["type"];
export type Agg = components["schemas"]["EventSource"]["agg"];
export type Distribution = components["schemas"]["LatestRun"]["distribution"];

export const BUILT_KINDS = ["basic", "behaviour", "result", "predictive"] as const;
export const ALL_KINDS = [...BUILT_KINDS, "sql", "upload"] as const;
export const TAG_TYPES: TagType[] = ["enum", "string", "number", "bool", "date"];
export const AGGS: Agg[] = ["count", "sum", "avg", "min", "max", "distinct_count", "first", "last", "most_frequent",
  "active_days", "first_time", "last_time", "days_since_first", "days_since_last"];
/** Aggregates over a property's values (the others count events or read their times). */
export const PROPERTY_AGGS = new Set<Agg>(["sum", "avg", "min", "max", "distinct_count", "first", "last", "most_frequent"]);
/** Which sources each kind may take its values from (userloop.profile.tagdefs.KIND_SOURCES). */
export const KIND_SOURCES: Record<string, Array<"profile" | "events" | "model">> = {
  basic: ["profile"], behaviour: ["events"], result: ["events", "model"], predictive: ["model"],
};

export interface TagFormValues {
  name: string;
  title_zh: string;
  title_en: string;
  description: string;
  kind: TagKind;
  type: TagType;
  /** An enumeration's values, lowest first. */
  values: string[];
  from: "profile" | "events" | "model";
  property: string;
  derive: "" | "years_since" | "days_since" | "month_day";
  event: string;
  agg: Agg;
  windowDays: number | null;
  model: string;
  field: string;
}

export const EMPTY_TAG: TagFormValues = {
  name: "", title_zh: "", title_en: "", description: "", kind: "behaviour", type: "number", values: [],
  from: "events", property: "", derive: "", event: "", agg: "count", windowDays: 30, model: "", field: "",
};

type Source = CreateTag["source"];

/** The API body for the form; `previous` is the definition being edited (its filters and bins are kept). */
export function tagBody(v: TagFormValues, project: string, previous?: Record<string, unknown>): CreateTag {
  const before = (previous?.source ?? {}) as Record<string, unknown>;
  let source: Source;
  if (v.from === "profile") {
    source = { from: "profile", property: v.property, ...(v.derive ? { derive: v.derive } : {}) };
  } else if (v.from === "model") {
    source = { from: "model", model: v.model, field: v.field };
  } else {
    const keptWindow = before.from === "events" && before.window && !("last" in (before.window as object))
      ? (before.window as components["schemas"]["DateRange"]) : null;
    source = {
      from: "events",
      event: v.event,
      agg: v.agg,
      ...(PROPERTY_AGGS.has(v.agg) && v.property ? { property: v.property } : {}),
      filters: before.from === "events" ? ((before.filters as components["schemas"]["Filter"][]) ?? []) : [],
      window: v.windowDays ? { last: v.windowDays } : keptWindow,
    };
  }
  const body: CreateTag = {
    project, name: v.name.trim(), title_zh: v.title_zh.trim(), title_en: v.title_en.trim(),
    description: v.description, kind: v.kind, type: v.type, source,
  };
  if (previous?.bins) body.bins = previous.bins as CreateTag["bins"];
  else if (v.type === "enum") body.values = v.values;
  return body;
}

/** The form's values for a stored definition (tags.get's `definition`). */
export function formFromDefinition(def: Record<string, unknown>): TagFormValues {
  const src = (def.source ?? {}) as Record<string, unknown>;
  const window = src.window as { last?: number } | null | undefined;
  const from = (src.from as TagFormValues["from"]) ?? "events";
  return {
    ...EMPTY_TAG,
    name: String(def.name ?? ""),
    title_zh: String(def.title_zh ?? ""),
    title_en: String(def.title_en ?? ""),
    description: String(def.description ?? ""),
    kind: (def.kind as TagKind) ?? "behaviour",
    type: (def.type as TagType) ?? "number",
    values: (def.values as string[] | undefined) ?? [],
    from: from === "profile" || from === "model" ? from : "events",
    property: String(src.property ?? ""),
    derive: (src.derive as TagFormValues["derive"]) ?? "",
    event: String(src.event ?? ""),
    agg: (src.agg as Agg) ?? "count",
    windowDays: window?.last ?? null,
    model: String(src.model ?? ""),
    field: String(src.field ?? ""),
  };
}

/** A bar chart of a tag's latest distribution: counts by value, a numeric histogram, or counts by period. */
export function distributionOption(d: Distribution, lang: Lang, otherLabel: string): ChartOption {
  let labels: string[];
  let counts: number[];
  if (d.kind === "counts") {
    labels = d.values.map((v) => (v.value === null ? "—" : String(v.value)));
    counts = d.values.map((v) => v.count);
    if (d.other > 0) {
      labels.push(otherLabel);
      counts.push(d.other);
    }
  } else if (d.kind === "numeric") {
    const fmt = new Intl.NumberFormat(lang, { maximumFractionDigits: 1 });
    labels = d.histogram.map((b) => `${fmt.format(b.from)}–${fmt.format(b.to)}`);
    counts = d.histogram.map((b) => b.count);
  } else {
    labels = d.counts.map((c) => c.period);
    counts = d.counts.map((c) => c.count);
  }
  return {
    tooltip: { trigger: "axis" },
    grid: { left: 56, right: 16, top: 16, bottom: 48 },
    xAxis: { type: "category", data: labels, axisLabel: { rotate: labels.length > 8 ? 30 : 0 } },
    yAxis: { type: "value", minInterval: 1 },
    series: [{ type: "bar", data: counts }],
  };
}
