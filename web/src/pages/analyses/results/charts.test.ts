import { describe, expect, it } from "vitest";
import { chartOption, funnelChart, hasData, lifecycleChart, pathsChart, retentionChart, trendsChart } from "./charts";
import { funnel, text } from "./fixtures";
import type { LifecycleResult, PathsResult, RetentionResult, TrendsResult } from "./types";

type Series = { type: string; name: string; data: unknown[]; stack?: string; lineStyle?: { type?: string } };
const seriesOf = (option: unknown) => (option as { series: Series[] }).series;

describe("trends chart", () => {
  const r: TrendsResult = {
    interval: "day", buckets: ["2026-12-01", "2026-12-02"], partial: [],
    series: [{ series: "A", label: "app_start", breakdown: null, data: [1, 2], total: 3 }],
    compare_buckets: ["2026-11-29", "2026-11-30"],
    compare: [{ series: "A", label: "app_start", breakdown: null, data: [4, 5], total: 9 }],
  };
  it("draws each series and its previous period dashed", () => {
    const series = seriesOf(trendsChart(r, text));
    expect(series.map((s) => s.name)).toEqual(["App start", "App start (analyses.result.previousPeriod)"]);
    expect(series[1].data).toEqual([4, 5]);
    expect(series[1].lineStyle?.type).toBe("dashed");
  });
});

describe("funnel chart", () => {
  it("stacks the people who converted and who dropped off at each step", () => {
    const option = funnelChart(funnel, text) as { xAxis: { data: string[] } };
    expect(option.xAxis.data).toEqual(["1. App start", "2. add_to_cart", "3. checkout"]);
    const [converted, dropped] = seriesOf(option);
    expect(converted.data).toEqual([100, 70, 40]);
    expect(dropped.data).toEqual([0, 30, 30]);
    expect(converted.stack).toBe(dropped.stack);
  });
  it("compares conversion rates per breakdown value", () => {
    const r = { ...funnel, breakdowns: [
      { breakdown: "iOS", steps: funnel.steps, entered: 100, converted: 40, conversion_rate: 0.4 },
      { breakdown: "$other", steps: funnel.steps, entered: 100, converted: 40, conversion_rate: 0.4 },
    ] };
    const series = seriesOf(funnelChart(r, text));
    expect(series.map((s) => s.name)).toEqual(["iOS", "analyses.result.other"]);
    expect(series[0].data).toEqual([1, 0.7, 0.4]);
  });
});

describe("retention chart", () => {
  it("puts each known rate in a heat map cell (period, cohort)", () => {
    const r: RetentionResult = {
      interval: "week", periods: 1, average: [],
      cohorts: [
        { cohort: "2026-11-02", breakdown: null, size: 10, counts: [10, 3], rates: [1, 0.3], complete: [true, true] },
        { cohort: "2026-11-09", breakdown: null, size: 8, counts: [8, null], rates: [1, null], complete: [true, false] },
      ],
    };
    const option = retentionChart(r, text) as { yAxis: { data: string[] }; visualMap: { max: number } };
    expect(option.yAxis.data).toEqual(["2026-11-02", "2026-11-09"]);
    expect(option.visualMap.max).toBe(0.3);
    expect(seriesOf(option)[0].data).toEqual([[0, 0, 1], [1, 0, 0.3], [0, 1, 1]]);
  });
});

describe("paths chart", () => {
  it("draws a Sankey whose links join the nodes by id", () => {
    const r: PathsResult = {
      steps: 2, users: 5, partial: false, paths: [],
      nodes: [
        { id: "0:app_start", step: 0, event: "app_start", users: 5, events: 5 },
        { id: "1:$end", step: 1, event: "$end", users: 2, events: 2 },
      ],
      links: [{ source: "0:app_start", target: "1:$end", step: 0, users: 2, events: 2 }],
    };
    const [sankey] = seriesOf(pathsChart(r, text)) as unknown as { type: string; data: { name: string }[]; links: { source: string; value: number }[]; label: { formatter: (p: { name: string }) => string } }[];
    expect(sankey.type).toBe("sankey");
    expect(sankey.data.map((n) => n.name)).toEqual(["0:app_start", "1:$end"]);
    expect(sankey.links[0]).toMatchObject({ source: "0:app_start", value: 2 });
    expect(sankey.label.formatter({ name: "0:app_start" })).toBe("App start");
    expect(sankey.label.formatter({ name: "1:$end" })).toBe("analyses.result.pathEnd");
  });
});

describe("lifecycle chart", () => {
  it("stacks the four statuses per period, dormant below zero", () => {
    const r: LifecycleResult = {
      interval: "week",
      buckets: [{ bucket: "2026-11-09", new: 3, returning: 5, resurrecting: 1, dormant: -2, complete: true }],
    };
    const series = seriesOf(lifecycleChart(r, text));
    expect(series.map((s) => s.data[0])).toEqual([3, 5, 1, -2]);
    expect(new Set(series.map((s) => s.stack)).size).toBe(1);
  });
});

describe("chartOption", () => {
  it("builds a chart for the kind and knows an empty result", () => {
    expect(seriesOf(chartOption("funnel", funnel, text))).toHaveLength(2);
    expect(hasData("funnel", { ...funnel, entered: 0 })).toBe(false);
    const stick = { interval: "day", periods: 7, total: 3, average: 1, rows: [{ intervals: 1, people: 3, share: 1 }] };
    expect(seriesOf(chartOption("stickiness", stick, text))[0].data).toEqual([3]);
  });
});
