// One ECharts option builder per analysis kind: pure functions of the API's result (and the words to write), so
// they are tested without a browser. The page passes the option to <Chart />.
import type { ChartOption } from "../../../components/Chart";
import type { Kind } from "../definition";
import { breakdownLabel, lineName, propertyName, type ResultText } from "./text";
import type {
  AttributionResult, DistributionResult, DrilldownResult, FunnelResult, IntervalResult, LifecycleResult, LtvResult,
  PathsResult, RetentionResult, StickinessResult, TrendsResult,
} from "./types";

const GRID = { left: 56, right: 24, top: 48, bottom: 40, containLabel: true };
const LEGEND = { type: "scroll", top: 0 };

function valueAxis(text: ResultText, percent = false) {
  return {
    type: "value",
    axisLabel: { formatter: (v: number) => (percent ? text.fmt.percent(v) : text.fmt.number(v)) },
  };
}

export function trendsChart(r: TrendsResult, text: ResultText): ChartOption {
  const multi = r.series.some((s) => s.breakdown !== null);
  const current = r.series.map((s) => ({
    type: "line", name: lineName(s, text, multi), data: s.data, showSymbol: r.buckets.length < 40,
  }));
  const previous = (r.compare ?? []).map((s) => ({
    type: "line",
    name: `${lineName(s, text, multi)} (${text.t("analyses.result.previousPeriod")})`,
    data: s.data,
    showSymbol: false,
    lineStyle: { type: "dashed", opacity: 0.6 },
  }));
  return {
    tooltip: { trigger: "axis", valueFormatter: text.fmt.number },
    legend: LEGEND,
    grid: GRID,
    xAxis: { type: "category", data: r.buckets, boundaryGap: false },
    yAxis: valueAxis(text),
    series: [...current, ...previous],
  };
}

export function funnelChart(r: FunnelResult, text: ResultText): ChartOption {
  const labels = r.steps.map((s) => `${s.step}. ${text.event(s.label)}`);
  if (r.breakdowns && r.breakdowns.length > 0) {
    return {
      tooltip: { trigger: "axis", valueFormatter: text.fmt.percent },
      legend: LEGEND,
      grid: GRID,
      xAxis: { type: "category", data: labels },
      yAxis: { ...valueAxis(text, true), max: 1 },
      series: r.breakdowns.map((b) => ({
        type: "bar",
        name: breakdownLabel(b.breakdown, text),
        data: b.steps.map((s) => s.conversion_from_first),
      })),
    };
  }
  return {
    tooltip: { trigger: "axis", valueFormatter: text.fmt.number },
    legend: LEGEND,
    grid: GRID,
    xAxis: { type: "category", data: labels },
    yAxis: valueAxis(text),
    series: [
      {
        type: "bar",
        name: text.t("analyses.result.converted"),
        stack: "funnel",
        data: r.steps.map((s) => s.count),
        label: {
          show: true,
          position: "inside",
          formatter: (p: { dataIndex: number }) => text.fmt.percent(r.steps[p.dataIndex].conversion_from_first),
        },
      },
      {
        type: "bar",
        name: text.t("analyses.result.dropped"),
        stack: "funnel",
        data: r.steps.map((s) => s.dropped),
        itemStyle: { color: "#f5b7b1" },
      },
    ],
  };
}

export function retentionChart(r: RetentionResult, text: ResultText): ChartOption {
  const cohorts = r.cohorts.filter((c) => c.breakdown === null || r.cohorts.every((x) => x.breakdown !== null));
  const periods = Array.from({ length: r.periods + 1 }, (_, i) => String(i));
  // Period 0 is everyone (100%): the colour scale follows the later periods so their differences show.
  const later = cohorts.flatMap((c) => c.rates.slice(1)).filter((v): v is number => v !== null);
  const top = later.length ? Math.min(1, Math.max(...later)) || 1 : 1;
  const cells: [number, number, number][] = [];
  cohorts.forEach((c, y) =>
    c.rates.forEach((rate, x) => {
      if (rate !== null) cells.push([x, y, rate]);
    }),
  );
  return {
    tooltip: {
      position: "top",
      formatter: (p: { value: [number, number, number] }) =>
        `${cohorts[p.value[1]].cohort} · ${text.t("analyses.result.periodN", { n: p.value[0] })}: ${text.fmt.percent(p.value[2])}`,
    },
    grid: { ...GRID, top: 16, bottom: 64 },
    xAxis: {
      type: "category", data: periods, name: text.t("analyses.result.period"), nameLocation: "middle", nameGap: 24,
      splitArea: { show: true },
    },
    yAxis: { type: "category", data: cohorts.map((c) => c.cohort), inverse: true, splitArea: { show: true } },
    visualMap: {
      min: 0, max: top, calculable: true, orient: "horizontal", left: "center", bottom: 0,
      formatter: (v: number) => text.fmt.percent(v),
    },
    series: [
      {
        type: "heatmap",
        data: cells,
        label: { show: cells.length <= 200, formatter: (p: { value: number[] }) => text.fmt.percent(p.value[2]) },
      },
    ],
  };
}

export function pathsChart(r: PathsResult, text: ResultText): ChartOption {
  const byId = new Map(r.nodes.map((n) => [n.id, n]));
  const nodeLabel = (event: string) => (event === "$end" ? text.t("analyses.result.pathEnd") : text.event(event));
  return {
    tooltip: { trigger: "item", valueFormatter: text.fmt.number },
    series: [
      {
        type: "sankey",
        emphasis: { focus: "adjacency" },
        nodeAlign: "left",
        data: r.nodes.map((n) => ({ name: n.id, depth: n.step, value: n.users })),
        links: r.links.map((l) => ({ source: l.source, target: l.target, value: l.users })),
        label: { formatter: (p: { name: string }) => nodeLabel(byId.get(p.name)?.event ?? p.name) },
        lineStyle: { color: "gradient", curveness: 0.5 },
      },
    ],
  };
}

export const LIFECYCLE_STATUSES = ["new", "returning", "resurrecting", "dormant"] as const;
const LIFECYCLE_COLOURS = { new: "#52c41a", returning: "#1f6feb", resurrecting: "#faad14", dormant: "#ff7875" };

export function lifecycleChart(r: LifecycleResult, text: ResultText): ChartOption {
  return {
    tooltip: { trigger: "axis", valueFormatter: text.fmt.number },
    legend: LEGEND,
    grid: GRID,
    xAxis: { type: "category", data: r.buckets.map((b) => b.bucket) },
    yAxis: valueAxis(text),
    series: LIFECYCLE_STATUSES.map((status) => ({
      type: "bar",
      stack: "lifecycle",
      name: text.t(`analyses.lifecycle.${status}`),
      itemStyle: { color: LIFECYCLE_COLOURS[status] },
      data: r.buckets.map((b) => b[status]),
    })),
  };
}

function bars(categories: string[], name: string, data: number[], text: ResultText, axisName?: string): ChartOption {
  return {
    tooltip: { trigger: "axis", valueFormatter: text.fmt.number },
    grid: GRID,
    xAxis: { type: "category", data: categories, name: axisName },
    yAxis: valueAxis(text),
    series: [{ type: "bar", name, data }],
  };
}

export function stickinessChart(r: StickinessResult, text: ResultText): ChartOption {
  return bars(
    r.rows.map((row) => String(row.intervals)), text.t("analyses.result.people"), r.rows.map((row) => row.people), text,
    text.t(`analyses.result.activeIntervals.${r.interval}`),
  );
}

export function distributionChart(r: DistributionResult, text: ResultText): ChartOption {
  return bars(r.buckets.map((b) => b.label), text.t("analyses.result.people"), r.buckets.map((b) => b.people), text);
}

export function intervalChart(r: IntervalResult, text: ResultText): ChartOption {
  const name = text.t(r.per === "pair" ? "analyses.result.pairs" : "analyses.result.people");
  return bars(r.histogram.map((b) => b.label), name, r.histogram.map((b) => b.count), text);
}

export function attributionChart(r: AttributionResult, text: ResultText): ChartOption {
  const channels = r.channels.map((c) => (c.channel === "$none" ? text.t("analyses.result.noTouch") : text.event(c.channel)));
  return {
    tooltip: { trigger: "axis", valueFormatter: text.fmt.number },
    legend: LEGEND,
    grid: GRID,
    xAxis: { type: "category", data: channels },
    yAxis: valueAxis(text),
    series: r.models.map((m) => ({
      type: "bar",
      name: text.t(`analyses.attribution.model.${m}`),
      data: r.channels.map((c) => c.credit[m]?.conversions ?? null),
    })),
  };
}

/** LTV: the value per person by day N, for everyone and for the last cohorts (at most 8 lines). */
export function ltvChart(r: LtvResult, text: ResultText): ChartOption {
  const days = r.days.map((d) => text.t("analyses.result.dayN", { n: d }));
  const cohorts = r.cohorts.slice(-7);
  return {
    tooltip: { trigger: "axis", valueFormatter: text.fmt.money },
    legend: LEGEND,
    grid: GRID,
    xAxis: { type: "category", data: days },
    yAxis: { type: "value", axisLabel: { formatter: (v: number) => text.fmt.money(v) } },
    series: [
      { type: "line", name: text.t("analyses.result.allCohorts"), data: r.all.values, lineStyle: { width: 3 } },
      ...cohorts.map((c) => ({ type: "line", name: c.cohort, data: c.values, lineStyle: { opacity: 0.5 } })),
    ],
  };
}

/** Drill-down: each dimension value's change between the periods, the largest contributions first. */
export function drilldownChart(r: DrilldownResult, text: ResultText): ChartOption {
  const rows = r.dimensions
    .flatMap((d) =>
      d.values.map((v) => ({ name: `${propertyName(d.property, d.source, text)}: ${breakdownLabel(v.value, text)}`, change: v.change })),
    )
    .sort((a, b) => Math.abs(b.change) - Math.abs(a.change))
    .slice(0, 20)
    .reverse();
  return {
    tooltip: { trigger: "axis", valueFormatter: text.fmt.number },
    grid: { ...GRID, left: 16 },
    xAxis: valueAxis(text),
    yAxis: { type: "category", data: rows.map((row) => row.name) },
    series: [
      {
        type: "bar",
        name: text.t("analyses.result.change"),
        data: rows.map((row) => ({ value: row.change, itemStyle: { color: row.change < 0 ? "#ff7875" : "#52c41a" } })),
      },
    ],
  };
}

/** The chart of a result of `kind`. */
export function chartOption(kind: Kind, result: unknown, text: ResultText): ChartOption {
  switch (kind) {
    case "trends":
      return trendsChart(result as TrendsResult, text);
    case "funnel":
      return funnelChart(result as FunnelResult, text);
    case "retention":
      return retentionChart(result as RetentionResult, text);
    case "paths":
      return pathsChart(result as PathsResult, text);
    case "lifecycle":
      return lifecycleChart(result as LifecycleResult, text);
    case "stickiness":
      return stickinessChart(result as StickinessResult, text);
    case "distribution":
      return distributionChart(result as DistributionResult, text);
    case "interval":
      return intervalChart(result as IntervalResult, text);
    case "attribution":
      return attributionChart(result as AttributionResult, text);
    case "ltv":
      return ltvChart(result as LtvResult, text);
    case "drilldown":
      return drilldownChart(result as DrilldownResult, text);
  }
}

/** Whether a result has anything to draw (an empty one shows the empty state instead). */
export function hasData(kind: Kind, result: unknown): boolean {
  const r = result as Record<string, unknown>;
  switch (kind) {
    case "trends":
      return (r.series as unknown[]).length > 0 && (r.buckets as unknown[]).length > 0;
    case "funnel":
      return (r.entered as number) > 0;
    case "retention":
      return (r.cohorts as unknown[]).length > 0;
    case "paths":
      return (r.links as unknown[]).length > 0;
    case "lifecycle":
      return (r.buckets as unknown[]).length > 0;
    case "stickiness":
      return (r.total as number) > 0;
    case "distribution":
      return (r.people as number) > 0;
    case "interval":
      return (r.histogram as unknown[]).length > 0;
    case "attribution":
      return (r.conversions as number) > 0;
    case "ltv":
      return (r.cohorts as unknown[]).length > 0;
    case "drilldown":
      return true;
  }
}
