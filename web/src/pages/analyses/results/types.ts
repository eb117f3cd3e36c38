// The results query.run returns per kind (src/userloop/query/kinds/*: the `*Result` pydantic models). The API types
// `result` as a free object; these are its shapes, read by the chart and table builders.

export interface TrendsLine {
  series: string;
  label: string;
  breakdown: string | null;
  data: (number | null)[];
  total: number | null;
}
export interface TrendsResult {
  interval: string;
  buckets: string[];
  series: TrendsLine[];
  compare_buckets: string[] | null;
  compare: TrendsLine[] | null;
  partial: string[];
}

export interface FunnelStepResult {
  step: number;
  label: string;
  event: string | null;
  optional: boolean;
  count: number;
  conversion_from_first: number | null;
  conversion_from_previous: number | null;
  dropped: number;
  drop_off_rate: number | null;
  median_time_from_previous: number | null;
  is_breakpoint: boolean;
}
export interface FunnelSeries {
  breakdown: string | null;
  steps: FunnelStepResult[];
  entered: number;
  converted: number;
  conversion_rate: number | null;
}
export interface FunnelResult {
  order: string;
  steps: FunnelStepResult[];
  entered: number;
  converted: number;
  conversion_rate: number | null;
  median_time_to_convert: number | null;
  breakdowns: FunnelSeries[] | null;
  trend: { bucket: string; entered: number; converted: number; rate: number | null }[] | null;
  partial: boolean;
}

export interface RetentionCohort {
  cohort: string;
  breakdown: string | null;
  size: number;
  counts: (number | null)[];
  rates: (number | null)[];
  complete: boolean[];
}
export interface RetentionResult {
  interval: string;
  periods: number;
  cohorts: RetentionCohort[];
  average: { breakdown: string | null; sizes: number[]; counts: number[]; rates: (number | null)[] }[];
}

export interface PathsResult {
  steps: number;
  users: number;
  nodes: { id: string; step: number; event: string; users: number; events: number }[];
  links: { source: string; target: string; step: number; users: number; events: number }[];
  paths: { events: string[]; users: number; count: number }[];
  partial: boolean;
}

export interface LifecycleBucket {
  bucket: string;
  new: number | null;
  returning: number | null;
  resurrecting: number | null;
  dormant: number | null;
  complete: boolean;
}
export interface LifecycleResult {
  interval: string;
  buckets: LifecycleBucket[];
}

export interface StickinessResult {
  interval: string;
  periods: number;
  total: number;
  average: number | null;
  rows: { intervals: number; people: number; share: number | null }[];
}

export interface DistributionResult {
  measure: "count" | "sum";
  people: number;
  buckets: { label: string; lo: number | null; hi: number | null; people: number; share: number }[];
  mean: number | null;
  median: number | null;
  p90: number | null;
}

export interface IntervalResult {
  per: "pair" | "person";
  pairs: number;
  people: number;
  histogram: { label: string; lo_seconds: number; hi_seconds: number | null; count: number; share: number }[];
  display: Record<string, string>;
}

export interface ChannelCredit {
  conversions: number;
  value: number | null;
  share: number | null;
}
export interface AttributionResult {
  models: string[];
  conversions: number;
  converters: number;
  attributed: number;
  value: number | null;
  channels: { channel: string; touched_conversions: number; credit: Record<string, ChannelCredit> }[];
}

export interface LtvRow {
  cohort: string;
  size: number;
  totals: (number | null)[];
  values: (number | null)[];
}
export interface LtvResult {
  interval: string;
  days: number[];
  cohorts: LtvRow[];
  all: LtvRow;
}

export interface Period {
  start: string;
  end: string;
  value: number;
}
export interface ValueChange {
  value: string | null;
  label: string;
  current: number;
  baseline: number;
  change: number;
  change_pct: number | null;
  contribution: number | null;
  significant: boolean;
}
export interface DrilldownResult {
  metric: string;
  current: Period;
  baseline: Period;
  change: number;
  change_pct: number | null;
  verdict: string;
  dimensions: { property: string; source: string; root_cause: boolean; values: ValueChange[] }[];
  summary: Record<string, string>;
}
