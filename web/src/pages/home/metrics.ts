// The home page's arithmetic, apart from React: the headline number of a core-metrics panel (from its analysis
// result), the comparison period's definition, the change between the two, and number formats for people.

/** How a headline reads: a count, a money sum, a rate in 0..1, or a number already in percent (0..100). */
export type MetricFormat = "count" | "money" | "rate" | "percent";

/** What the headline of a panel measures (shown under the number). */
export type Measure = "total" | "dailyAverage" | "conversion" | "firstPeriod";

export interface Headline {
  value: number | null;
  format: MetricFormat;
  measure: Measure;
  /** The points of the sparkline, oldest first. */
  spark: number[];
}

type Json = Record<string, unknown>;
const DAILY_MATHS = new Set(["dau", "wau", "mau"]);

const asList = (value: unknown): Json[] => (Array.isArray(value) ? (value as Json[]) : []);
const asNumbers = (value: unknown): number[] =>
  Array.isArray(value) ? value.map((v) => (typeof v === "number" ? v : Number.NaN)) : [];
const finite = (values: number[]) => values.filter((v) => Number.isFinite(v));
const mean = (values: number[]) => {
  const ok = finite(values);
  return ok.length ? ok.reduce((a, b) => a + b, 0) / ok.length : null;
};

/** The sum of several series point by point (the breakdown rows of one series). */
export function sumPointwise(rows: number[][]): number[] {
  const length = Math.max(0, ...rows.map((r) => r.length));
  return Array.from({ length }, (_, i) => rows.reduce((acc, r) => acc + (Number.isFinite(r[i]) ? r[i] : 0), 0));
}

function trendsHeadline(definition: Json, result: Json, money: string | null | undefined): Headline {
  const series = asList(result.series);
  const first = asList(definition.series)[0] ?? {};
  if (definition.formula) {
    const line = asNumbers(series[0]?.data);
    return { value: mean(line), format: "percent", measure: "dailyAverage", spark: finite(line) };
  }
  const letter = series[0]?.series;
  const rows = series.filter((s) => s.series === letter);
  const spark = sumPointwise(rows.map((r) => asNumbers(r.data)));
  if (DAILY_MATHS.has(String(first.math))) {
    return { value: mean(asNumbers(rows[0]?.data)), format: "count", measure: "dailyAverage", spark };
  }
  const totals = rows.map((r) => (typeof r.total === "number" ? r.total : Number.NaN));
  const value = finite(totals).length ? finite(totals).reduce((a, b) => a + b, 0) : null;
  // The money property unknown (undefined: the project's settings are not readable), a sum is taken for money.
  const isMoney = first.math === "sum" && (money === undefined ? true : money !== null && first.property === money);
  return { value, format: isMoney ? "money" : "count", measure: "total", spark };
}

function funnelHeadline(result: Json): Headline {
  const rate = typeof result.conversion_rate === "number" ? result.conversion_rate : null;
  const spark = asList(result.steps).map((s) => (typeof s.count === "number" ? s.count : 0));
  return { value: rate, format: "rate", measure: "conversion", spark };
}

/** The rate of each period over the cohorts that count: the ones whose cell is complete; when none is (an
 * "on or after" retention never closes its cells), every cohort but the latest, still running. */
function cohortRates(cohorts: Json[], periods: number): (number | null)[] {
  return Array.from({ length: periods }, (_, p) => {
    const known = cohorts.filter((c) => Number.isFinite(asNumbers(c.counts)[p]));
    const complete = known.filter((c) => (c.complete as boolean[] | undefined)?.[p]);
    const used = complete.length ? complete : known.slice(0, Math.max(1, known.length - 1));
    const size = used.reduce((acc, c) => acc + (typeof c.size === "number" ? c.size : 0), 0);
    const count = used.reduce((acc, c) => acc + asNumbers(c.counts)[p], 0);
    return size > 0 ? count / size : null;
  });
}

function retentionHeadline(result: Json): Headline {
  let rates = asNumbers(asList(result.average)[0]?.rates);
  if (!(rates.length > 1 && Number.isFinite(rates[1]))) {
    const cohorts = asList(result.cohorts).filter((c) => c.breakdown === null || c.breakdown === undefined);
    const periods = Math.max(0, ...cohorts.map((c) => asNumbers(c.counts).length));
    rates = cohortRates(cohorts.length ? cohorts : asList(result.cohorts), periods).map((r) => r ?? Number.NaN);
  }
  const value = rates.length > 1 && Number.isFinite(rates[1]) ? rates[1] : null;
  return { value, format: "rate", measure: "firstPeriod", spark: finite(rates) };
}

/** The headline of a panel: its definition, the `result` of query.run, and the project's money property (null:
 * none; undefined: not known). */
export function headline(definition: Json, result: Json | null | undefined, money: string | null | undefined): Headline {
  const empty: Headline = { value: null, format: "count", measure: "total", spark: [] };
  if (!result) return empty;
  switch (definition.kind) {
    case "trends":
      return trendsHeadline(definition, result, money);
    case "funnel":
      return funnelHeadline(result);
    case "retention":
      return retentionHeadline(result);
    default:
      return empty;
  }
}

// periods ----------------------------------------------------------------------------------------------------
export type Comparison = "previous" | "year" | "none";
export const COMPARISONS: Comparison[] = ["previous", "year", "none"];
export const PERIODS = [7, 14, 30, 60, 90] as const;

/** Today's date (YYYY-MM-DD) in the time zone `zone` at the instant `now`. */
export function todayIn(zone: string, now: Date): string {
  const parts = new Intl.DateTimeFormat("en-CA", { timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit" })
    .formatToParts(now)
    .reduce<Record<string, string>>((acc, p) => ({ ...acc, [p.type]: p.value }), {});
  return `${parts.year}-${parts.month}-${parts.day}`;
}

/** The project's today as a daily trends result shows it (its last bucket is yesterday for a range of complete
 * days, today otherwise), or null for any other result: the home page's fallback when it may not read the
 * project's time zone. */
export function todayFromResult(definition: Json, result: Json | null | undefined): string | null {
  const range = definition.date_range as Json | undefined;
  if (definition.kind !== "trends" || (definition.interval ?? "day") !== "day" || typeof range?.last !== "number") {
    return null;
  }
  const buckets = result?.buckets;
  const last = Array.isArray(buckets) ? buckets[buckets.length - 1] : null;
  if (typeof last !== "string" || !/^\d{4}-\d{2}-\d{2}$/.test(last)) return null;
  return range.include_today || range.include_current ? last : addDays(last, 1);
}

/** `day` (YYYY-MM-DD) moved by `days` calendar days. */
export function addDays(day: string, days: number): string {
  const [y, m, d] = day.split("-").map(Number);
  return new Date(Date.UTC(y, m - 1, d + days)).toISOString().slice(0, 10);
}

const spanDays = (from: string, to: string) => Math.round((Date.parse(to) - Date.parse(from)) / 86_400_000) + 1;

/** The first and last day a definition's date range covers, as the API resolves it (complete days unless
 * include_today / include_current). */
export function resolveRange(range: Json | undefined, today: string): [string, string] {
  const include = Boolean(range?.include_today ?? range?.include_current);
  const end = include ? today : addDays(today, -1);
  if (range && typeof range.last === "number") return [addDays(end, -(range.last - 1)), end];
  if (range && typeof range.from === "string") return [range.from, typeof range.to === "string" ? range.to : end];
  return [addDays(end, -29), end];
}

/** The definition over the comparison period: the same length just before (previous), or 364 days earlier
 * (same weekdays a year before); null for "none". */
export function comparisonDefinition(definition: Json, comparison: Comparison, today: string): Json | null {
  if (comparison === "none") return null;
  const [from, to] = resolveRange(definition.date_range as Json | undefined, today);
  const shift = comparison === "previous" ? spanDays(from, to) : 364;
  return { ...definition, date_range: { from: addDays(from, -shift), to: addDays(to, -shift) } };
}

/** The change from `before` to `now`: relative for counts and money, in percentage points for rates. */
export function change(now: number | null, before: number | null, format: MetricFormat): number | null {
  if (now === null || before === null || !Number.isFinite(now) || !Number.isFinite(before)) return null;
  if (format === "rate") return (now - before) * 100;
  if (format === "percent") return now - before;
  if (before === 0) return null;
  return (now - before) / Math.abs(before);
}

// formats ----------------------------------------------------------------------------------------------------
/** A headline for people: thousands separators, rates as percentages with one decimal, money with two. */
export function formatValue(value: number | null, format: MetricFormat, locale: string): string {
  if (value === null || !Number.isFinite(value)) return "—";
  switch (format) {
    case "rate":
      return new Intl.NumberFormat(locale, { style: "percent", minimumFractionDigits: 1, maximumFractionDigits: 1 })
        .format(value);
    case "percent":
      return new Intl.NumberFormat(locale, { minimumFractionDigits: 1, maximumFractionDigits: 1 }).format(value) + "%";
    case "money":
      return new Intl.NumberFormat(locale, { minimumFractionDigits: 2, maximumFractionDigits: 2 }).format(value);
    default:
      return new Intl.NumberFormat(locale, { maximumFractionDigits: value < 100 ? 1 : 0 }).format(value);
  }
}

/** A change for people: "+12.3%" (relative) or "+1.2 pp" (rates), signed. */
export function formatChange(delta: number, format: MetricFormat, locale: string): string {
  const sign = delta > 0 ? "+" : delta < 0 ? "−" : "±";
  const size = Math.abs(delta);
  if (format === "rate" || format === "percent") {
    return sign + new Intl.NumberFormat(locale, { minimumFractionDigits: 1, maximumFractionDigits: 1 }).format(size);
  }
  return (
    sign +
    new Intl.NumberFormat(locale, { style: "percent", minimumFractionDigits: 1, maximumFractionDigits: 1 }).format(size)
  );
}

/** The link that opens a panel's analysis in the analyses area's builder (/analyses/new), which reads the
 * definition (query.run's `definition`) from `q`. */
export function analysisLink(definition: Json, project: string): string {
  const params = new URLSearchParams({ project, q: JSON.stringify(definition) });
  return `/analyses/new?${params.toString()}`;
}
