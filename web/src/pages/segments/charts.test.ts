import { describe, expect, it } from "vitest";
import { compareBarOption, escapeText, rankedFeatures, sizeSeries, type FeatureResult, type HistoryRun } from "./charts";

const run = (run_date: string, users: number): HistoryRun =>
  ({ run_date, users, finished_at: run_date, opened: 0, closed: 0, seconds: 0, stats: {} }) as HistoryRun;

const feature = (label: string, value: number | null, significant = true): FeatureResult =>
  ({
    name: label, label, kind: "tag", type: "number", test: "welch", statistic: 1, df: 1, p_value: 0.01,
    p_adjusted: 0.02, significant, effect: value, effect_size: { measure: "cohens_d", value },
    summary: { en: `${label} en`, zh: `${label} zh` },
  }) as FeatureResult;

describe("segment charts", () => {
  it("orders sizes oldest first, one point a day (the newest run of a day wins)", () => {
    const runs = [run("2026-12-07", 30), run("2026-12-07", 20), run("2026-12-05", 10)];
    expect(sizeSeries(runs)).toEqual([["2026-12-05", 10], ["2026-12-07", 30]]);
  });

  it("ranks significant features by absolute effect", () => {
    const ranked = rankedFeatures([feature("a", 0.2), feature("b", -0.9), feature("c", 2, false), feature("d", null)]);
    expect(ranked.map((f) => f.label)).toEqual(["b", "a"]);
  });

  it("draws the largest effect on top and escapes user data in tooltips", () => {
    const option = compareBarOption([feature("<b>x</b>", 0.2), feature("y", -0.9)], "en", "effect") as {
      yAxis: { data: string[] };
      series: Array<{ data: Array<{ value: number }> }>;
      tooltip: { formatter: (p: { dataIndex: number }) => string };
    };
    expect(option.yAxis.data).toEqual(["<b>x</b>", "y"]);
    expect(option.series[0].data.map((d) => d.value)).toEqual([0.2, -0.9]);
    expect(option.tooltip.formatter({ dataIndex: 0 })).toBe("&lt;b&gt;x&lt;/b&gt;: &lt;b&gt;x&lt;/b&gt; en");
    expect(escapeText(`"'&`)).toBe("&quot;&#39;&amp;");
  });
});
