// ECharts options for the segments area, built from the API's typed results: a segment's size over its refreshes,
// and the features that tell two groups apart, ranked by effect size.
import type { components } from "../../api/schema";
import type { ChartOption } from "../../components/Chart";
import { bilingual, type Lang } from "./format";

export type HistoryRun = components["schemas"]["HistoryRun"];
export type FeatureResult = components["schemas"]["FeatureResult"];

/** Size by refresh date, oldest first (the API lists runs newest first; one point per date, the latest run wins). */
export function sizeSeries(runs: HistoryRun[]): Array<[string, number]> {
  const byDate = new Map<string, number>();
  for (const run of [...runs].reverse()) byDate.set(run.run_date, run.users);
  return [...byDate.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

export function sizeHistoryOption(runs: HistoryRun[], seriesName: string): ChartOption {
  const points = sizeSeries(runs);
  return {
    tooltip: { trigger: "axis" },
    grid: { left: 56, right: 24, top: 24, bottom: 32 },
    xAxis: { type: "category", data: points.map(([d]) => d) },
    yAxis: { type: "value", minInterval: 1 },
    series: [{ name: seriesName, type: "line", data: points.map(([, n]) => n), showSymbol: points.length < 40 }],
  };
}

/** The significant features ranked by the absolute effect size, at most `top`. */
export function rankedFeatures(features: FeatureResult[], top = 15): FeatureResult[] {
  return features
    .filter((f) => f.significant && f.effect_size.value !== null)
    .sort((a, b) => Math.abs(b.effect_size.value ?? 0) - Math.abs(a.effect_size.value ?? 0))
    .slice(0, top);
}

/** A horizontal bar per significant feature: its effect size (Cohen's d signed, Cramér's V ≥ 0), largest on top. */
export function compareBarOption(features: FeatureResult[], lang: Lang, axisName: string): ChartOption {
  const ranked = rankedFeatures(features).reverse();
  return {
    tooltip: {
      trigger: "item",
      formatter: (p: { dataIndex: number }) => {
        const f = ranked[p.dataIndex];
        return f ? escapeText(`${f.label}: ${bilingual(f.summary, lang)}`) : "";
      },
    },
    grid: { left: 160, right: 32, top: 16, bottom: 40 },
    xAxis: { type: "value", name: axisName, nameLocation: "middle", nameGap: 26 },
    yAxis: { type: "category", data: ranked.map((f) => truncate(f.label, 24)) },
    series: [{
      type: "bar",
      data: ranked.map((f) => ({
        value: Number((f.effect_size.value ?? 0).toFixed(3)),
        itemStyle: { color: (f.effect_size.value ?? 0) >= 0 ? "#1f6feb" : "#d4380d" },
      })),
    }],
  };
}

const truncate = (s: string, n: number) => (s.length > n ? s.slice(0, n - 1) + "…" : s);

/** ECharts tooltips are HTML: user data in them is escaped. */
export function escapeText(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}
