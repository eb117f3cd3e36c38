// The models' stored reports (models.report's `report`, a free-form object per model) read into typed shapes,
// and the ECharts options drawn from them. Pure functions: the views render them, the tests check them.
//
// Fields marked "when present" are not in every report: a report written before they existed, or by a run that
// could not compute them, lacks them, and the view says so instead of drawing an empty chart.
import type { ChartOption } from "../../components/Chart";

export const MODEL_TABS = ["rfm", "lifecycle", "value", "clv", "churn", "preference", "activity"] as const;
export type ModelTab = (typeof MODEL_TABS)[number];

export const LIFECYCLE_STAGES = ["introduction", "growth", "maturity", "dormancy", "churn"] as const;
export const RISK_TIERS = ["high", "medium", "low"] as const;
export const VALUE_TIERS = ["high", "medium", "low"] as const;

export interface RfmClass {
  class: string;
  zh: string;
  en: string;
  users: number;
}

/** One cell of the 5×5×5 quintile cube: scores 1..5 (5 = most recent, most frequent, highest spend). */
export interface RfmCell {
  r: number;
  f: number;
  m: number;
  users: number;
}

export interface RfmReport {
  customers: number;
  medians: { recency_days: number; frequency: number; monetary: number };
  classes: RfmClass[];
  /** When present: the cube's cells (list of cells, or {"<r><f><m>": users}). */
  cube?: RfmCell[] | Record<string, number>;
}

/** Stage-to-stage counts between two days (models/lifecycle.TransitionMatrix); row "new" = first seen after. */
export interface TransitionMatrix {
  from_date: string;
  to_date: string;
  rows: string[];
  columns: string[];
  counts: number[][];
}

/** One flow of the lifecycle report: users whose stage was `from` ("new": none yet) and is `to` now. */
export interface TransitionFlow {
  from: string;
  to: string;
  users: number;
}

export interface LifecycleReport {
  users: number;
  stages: Record<string, number>;
  /** When present: flows from the previous run's stages (or the period start's) to this run's, as a list of
   * flows (models/lifecycle.py) or as a matrix (models/lifecycle.TransitionMatrix). */
  transitions?: TransitionFlow[] | TransitionMatrix;
  /** The two days the flows compare, and whether "before" is the previous run or the period start. */
  transitions_period?: { from_date: string; to_date: string; source?: string };
  /** When present: why there are no flows (no earlier stages to compare with). */
  transitions_note?: { en: string; zh: string };
}

/** A histogram bin; `to` is null for the open bin ("≥ from"). */
export interface Bin {
  from: number;
  to: number | null;
  count: number;
}

export interface ClvCandidate {
  aggregate_error?: number | null;
  decile_error?: number | null;
  p_alive_auc_bought_again?: number | null;
  predicted_holdout_purchases?: number;
  deciles?: { decile: number; customers: number; predicted_mean: number; actual_mean: number }[];
}

export interface ClvReport {
  customers: number;
  horizon_days: number;
  transaction_model?: { name: string };
  choice?: { model: string; mode: string; reason: string };
  validation?: { holdout_days: number; customers: number; candidates: Record<string, ClvCandidate> };
  expected_purchases_total?: number;
  expected_value_total?: number;
  total_clv?: number;
  mean_p_alive?: number;
  /** When present: the customers' CLV in bins. */
  distribution?: Bin[] | { clv?: Bin[] };
}

export interface ValueJumpBehaviour {
  behaviour: string;
  mean_reached: number;
  mean_stuck: number;
  std_diff: number;
  p_value: number;
  q_value: number;
}

export interface ValueReport {
  customers: number;
  config?: { expression?: string };
  tiers: Record<string, { users: number; score_share: number }>;
  value_jump?:
    | { reached_users: number; stuck_users: number; behaviours: ValueJumpBehaviour[] }
    | { error: { code: string; message: string } };
}

/** One bin of a reliability diagram: mean predicted probability against the observed rate. */
export interface CalibrationBin {
  predicted: number;
  observed: number;
  users: number;
}

export interface ChurnReport {
  target?: string;
  validation?: {
    users?: number;
    positive_rate?: number | null;
    auc?: number | null;
    pr_auc?: number | null;
    brier?: number | null;
    ece?: number | null;
    top_decile_lift?: number | null;
    /** When present: the validation snapshot's reliability bins. */
    calibration?: CalibrationBin[];
  };
  feature_importance?: Record<string, number>;
  tiers: Record<string, number>;
  learner?: string;
  config?: { thresholds?: number[] };
}

export interface PreferenceReport {
  users: number;
  dimensions: Record<string, Record<string, number>>;
  associations?: {
    rules: number;
    top: { item: string; also_item: string; baskets: number; support: number; confidence: number; lift: number }[];
  };
}

export interface ActivityReport {
  users: number;
  active_users: number;
  low_frequency_users: number;
  mean_score: number;
}

/** The tab of the URL, or the first tab when it names none. */
export function tabOf(value: string): ModelTab {
  return (MODEL_TABS as readonly string[]).includes(value) ? (value as ModelTab) : "rfm";
}

// ---- RFM ------------------------------------------------------------------------------------------------------

/** The cube's cells as a list, whatever form the report holds them in; [] when it holds none. */
export function cubeCells(cube: RfmReport["cube"]): RfmCell[] {
  if (!cube) return [];
  if (Array.isArray(cube)) return cube.filter((c) => c.users > 0);
  return Object.entries(cube)
    .filter(([code, users]) => /^[1-5]{3}$/.test(code) && users > 0)
    .map(([code, users]) => ({ r: Number(code[0]), f: Number(code[1]), m: Number(code[2]), users }));
}

/** Users per (F, M) for one R score: a 5×5 grid as ECharts heat-map points [f-1, m-1, users]. */
export function cubeSlice(cells: RfmCell[], r: number): [number, number, number][] {
  const grid = new Map<string, number>();
  for (const c of cells) if (c.r === r) grid.set(`${c.f}${c.m}`, (grid.get(`${c.f}${c.m}`) ?? 0) + c.users);
  const out: [number, number, number][] = [];
  for (let f = 1; f <= 5; f++) for (let m = 1; m <= 5; m++) out.push([f - 1, m - 1, grid.get(`${f}${m}`) ?? 0]);
  return out;
}

export function rfmBarOption(classes: RfmClass[], lang: string, usersLabel: string): ChartOption {
  const names = classes.map((c) => (lang === "en" ? c.en : c.zh));
  return {
    tooltip: { trigger: "axis" },
    grid: { left: 8, right: 48, top: 16, bottom: 8, containLabel: true },
    xAxis: { type: "value" },
    yAxis: { type: "category", data: names, inverse: true },
    series: [{ type: "bar", name: usersLabel, data: classes.map((c) => c.users), label: { show: true, position: "right" } }],
  };
}

/** A heat map of one R slice: F across, M up, users in the cells; `max` is shared so slices compare. */
export function cubeSliceOption(
  cells: RfmCell[],
  r: number,
  max: number,
  labels: { title: string; f: string; m: string },
): ChartOption {
  const scores = ["1", "2", "3", "4", "5"];
  return {
    title: { text: labels.title, left: "center", textStyle: { fontSize: 13 } },
    tooltip: { position: "top" },
    grid: { left: 40, right: 8, top: 32, bottom: 40 },
    xAxis: { type: "category", data: scores, name: labels.f, nameLocation: "middle", nameGap: 24 },
    yAxis: { type: "category", data: scores, name: labels.m, nameLocation: "middle", nameGap: 24 },
    visualMap: { min: 0, max: Math.max(max, 1), show: false, inRange: { color: ["#f0f5ff", "#1f6feb"] } },
    series: [{ type: "heatmap", data: cubeSlice(cells, r), label: { show: true, fontSize: 10 } }],
  };
}

// ---- Lifecycle ------------------------------------------------------------------------------------------------

export interface SankeyData {
  nodes: { name: string }[];
  links: { source: string; target: string; value: number }[];
}

/** The Sankey of a transition matrix: left nodes are the earlier day's stages, right the later day's (a Sankey
 * must be acyclic, so "growth → growth" joins two distinct nodes). `label` names a stage (or "new"). */
export function sankeyData(matrix: TransitionMatrix, label: (stage: string) => string): SankeyData {
  const left = (s: string) => `${label(s)} · ${matrix.from_date}`;
  const right = (s: string) => `${label(s)} · ${matrix.to_date}`;
  const links: SankeyData["links"] = [];
  matrix.rows.forEach((row, i) =>
    matrix.columns.forEach((col, j) => {
      const value = matrix.counts[i]?.[j] ?? 0;
      if (value > 0) links.push({ source: left(row), target: right(col), value });
    }),
  );
  const used = new Set(links.flatMap((l) => [l.source, l.target]));
  const nodes = [...matrix.rows.map(left), ...matrix.columns.map(right)].filter((n) => used.has(n));
  return { nodes: nodes.map((name) => ({ name })), links };
}

/** The report's flows as a matrix (stages in lifecycle order, "new" last), whatever form it holds them in;
 * null when it holds none. */
export function transitionMatrix(report: LifecycleReport): TransitionMatrix | null {
  const flows = report.transitions;
  if (!flows) return null;
  if (!Array.isArray(flows)) return flows;
  if (flows.length === 0) return null;
  const ordered = (seen: string[], first: readonly string[]) => [
    ...first.filter((s) => seen.includes(s)),
    ...seen.filter((s) => !first.includes(s)),
  ];
  const rows = ordered([...new Set(flows.map((f) => f.from))], [...LIFECYCLE_STAGES, "new"]);
  const columns = ordered([...new Set(flows.map((f) => f.to))], LIFECYCLE_STAGES);
  const counts = rows.map(() => columns.map(() => 0));
  for (const f of flows) counts[rows.indexOf(f.from)][columns.indexOf(f.to)] += f.users;
  const period = report.transitions_period;
  return { from_date: period?.from_date ?? "", to_date: period?.to_date ?? "", rows, columns, counts };
}

export function sankeyOption(data: SankeyData): ChartOption {
  return {
    tooltip: { trigger: "item" },
    series: [
      {
        type: "sankey",
        data: data.nodes,
        links: data.links,
        emphasis: { focus: "adjacency" },
        layoutIterations: 0, // keep the stages in lifecycle order, top to bottom
        lineStyle: { color: "gradient", curveness: 0.5 },
        left: 8,
        right: 160,
      },
    ],
  };
}

export function stagesOption(stages: Record<string, number>, label: (stage: string) => string): ChartOption {
  const order = [...LIFECYCLE_STAGES.filter((s) => s in stages), ...Object.keys(stages).filter((s) => !LIFECYCLE_STAGES.includes(s as never))];
  return {
    tooltip: { trigger: "axis" },
    grid: { left: 8, right: 16, top: 16, bottom: 8, containLabel: true },
    xAxis: { type: "category", data: order.map(label) },
    yAxis: { type: "value" },
    series: [{ type: "bar", data: order.map((s) => stages[s]), label: { show: true, position: "top" } }],
  };
}

// ---- CLV ------------------------------------------------------------------------------------------------------

/** The CLV bins, whatever form the report holds them in; [] when it holds none. */
export function clvBins(distribution: ClvReport["distribution"]): Bin[] {
  if (!distribution) return [];
  return Array.isArray(distribution) ? distribution : (distribution.clv ?? []);
}

export function histogramOption(bins: Bin[], format: (v: number) => string, usersLabel: string): ChartOption {
  return {
    tooltip: { trigger: "axis" },
    grid: { left: 8, right: 16, top: 24, bottom: 8, containLabel: true },
    xAxis: {
      type: "category",
      data: bins.map((b) => (b.to === null ? `≥ ${format(b.from)}` : `${format(b.from)}–${format(b.to)}`)),
      axisLabel: { rotate: 30 },
    },
    yAxis: { type: "value", name: usersLabel },
    series: [{ type: "bar", barCategoryGap: "2%", data: bins.map((b) => b.count) }],
  };
}

/** Predicted against actual mean purchases per decile of the chosen model in the holdout (a forecast check). */
export function decilesOption(candidate: ClvCandidate, labels: { predicted: string; actual: string; decile: string }): ChartOption {
  const deciles = candidate.deciles ?? [];
  return {
    tooltip: { trigger: "axis" },
    legend: { top: 0 },
    grid: { left: 8, right: 16, top: 32, bottom: 8, containLabel: true },
    xAxis: { type: "category", name: labels.decile, data: deciles.map((d) => String(d.decile)) },
    yAxis: { type: "value" },
    series: [
      { type: "bar", name: labels.predicted, data: deciles.map((d) => round(d.predicted_mean, 3)) },
      { type: "bar", name: labels.actual, data: deciles.map((d) => round(d.actual_mean, 3)) },
    ],
  };
}

// ---- Churn ----------------------------------------------------------------------------------------------------

/** A reliability diagram: observed rate against mean predicted probability, beside the diagonal. */
export function calibrationOption(bins: CalibrationBin[], labels: { predicted: string; observed: string; ideal: string }): ChartOption {
  return {
    tooltip: { trigger: "item" },
    legend: { top: 0 },
    grid: { left: 64, right: 24, top: 40, bottom: 48 },
    xAxis: { type: "value", min: 0, max: 1, name: labels.predicted, nameLocation: "middle", nameGap: 28 },
    yAxis: { type: "value", min: 0, max: 1, name: labels.observed, nameLocation: "middle", nameGap: 40 },
    series: [
      { type: "line", name: labels.ideal, data: [[0, 0], [1, 1]], symbol: "none", lineStyle: { type: "dashed" } },
      {
        type: "line",
        name: labels.observed,
        data: [...bins].sort((a, b) => a.predicted - b.predicted).map((b) => [round(b.predicted, 3), round(b.observed, 3)]),
      },
    ],
  };
}

/** Drivers by weight, largest first, without the zero ones. */
export function churnDrivers(importance: Record<string, number> | undefined, limit = 12): [string, number][] {
  return Object.entries(importance ?? {})
    .filter(([, w]) => w > 0)
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit);
}

export function driversOption(drivers: [string, number][], label: (feature: string) => string): ChartOption {
  return {
    tooltip: { trigger: "axis" },
    grid: { left: 8, right: 32, top: 8, bottom: 8, containLabel: true },
    xAxis: { type: "value" },
    yAxis: { type: "category", inverse: true, data: drivers.map(([f]) => label(f)) },
    series: [{ type: "bar", data: drivers.map(([, w]) => round(w, 4)) }],
  };
}

export function tiersOption(tiers: [string, number][], palette: Record<string, string>): ChartOption {
  return {
    tooltip: { trigger: "item" },
    series: [
      {
        type: "pie",
        radius: ["40%", "70%"],
        data: tiers.map(([name, value]) => ({ name, value, itemStyle: palette[name] ? { color: palette[name] } : undefined })),
      },
    ],
  };
}

// ---- Preference -----------------------------------------------------------------------------------------------

/** A dimension's `limit` most common values, most users first. */
export function topValues(counts: Record<string, number>, limit = 10): [string, number][] {
  const sorted = Object.entries(counts).sort((a, b) => b[1] - a[1]);
  return sorted.slice(0, limit);
}

export function round(value: number, digits: number): number {
  const k = 10 ** digits;
  return Math.round(value * k) / k;
}
