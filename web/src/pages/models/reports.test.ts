import { describe, expect, it } from "vitest";
import {
  calibrationOption, churnDrivers, clvBins, cubeCells, cubeSlice, histogramOption, sankeyData, tabOf, topValues,
  transitionMatrix, type TransitionMatrix,
} from "./reports";

describe("the RFM cube", () => {
  it("reads cells from a list or from a code map, without empty cells", () => {
    expect(cubeCells([{ r: 5, f: 1, m: 2, users: 3 }, { r: 1, f: 1, m: 1, users: 0 }])).toEqual([{ r: 5, f: 1, m: 2, users: 3 }]);
    expect(cubeCells({ "512": 3, "111": 0, bad: 9 })).toEqual([{ r: 5, f: 1, m: 2, users: 3 }]);
    expect(cubeCells(undefined)).toEqual([]);
  });

  it("slices one R score into a full 5×5 grid of [f-1, m-1, users]", () => {
    const slice = cubeSlice([{ r: 5, f: 1, m: 2, users: 3 }, { r: 4, f: 1, m: 2, users: 7 }], 5);
    expect(slice).toHaveLength(25);
    expect(slice.find(([f, m]) => f === 0 && m === 1)).toEqual([0, 1, 3]);
    expect(slice.reduce((s, [, , n]) => s + n, 0)).toBe(3);
  });
});

describe("the lifecycle Sankey", () => {
  const matrix: TransitionMatrix = {
    from_date: "2026-11-01",
    to_date: "2026-12-01",
    rows: ["growth", "churn", "new"],
    columns: ["growth", "churn"],
    counts: [[5, 2], [0, 4], [3, 0]],
  };

  it("links each earlier stage to each later one, keeping the two days apart and dropping empty flows", () => {
    const data = sankeyData(matrix, (s) => s.toUpperCase());
    expect(data.links).toEqual([
      { source: "GROWTH · 2026-11-01", target: "GROWTH · 2026-12-01", value: 5 },
      { source: "GROWTH · 2026-11-01", target: "CHURN · 2026-12-01", value: 2 },
      { source: "CHURN · 2026-11-01", target: "CHURN · 2026-12-01", value: 4 },
      { source: "NEW · 2026-11-01", target: "GROWTH · 2026-12-01", value: 3 },
    ]);
    expect(data.nodes.map((n) => n.name)).toEqual([
      "GROWTH · 2026-11-01", "CHURN · 2026-11-01", "NEW · 2026-11-01", "GROWTH · 2026-12-01", "CHURN · 2026-12-01",
    ]);
  });
});

describe("the lifecycle report's flows", () => {
  it("reads the list of flows into a matrix in lifecycle order, 'new' last, dated by the report's period", () => {
    const matrix = transitionMatrix({
      users: 14,
      stages: {},
      transitions: [
        { from: "new", to: "growth", users: 3 },
        { from: "churn", to: "churn", users: 4 },
        { from: "growth", to: "churn", users: 2 },
        { from: "growth", to: "growth", users: 5 },
      ],
      transitions_period: { from_date: "2026-11-01", to_date: "2026-12-01", source: "previous_run" },
    });
    expect(matrix).toEqual({
      from_date: "2026-11-01",
      to_date: "2026-12-01",
      rows: ["growth", "churn", "new"],
      columns: ["growth", "churn"],
      counts: [[5, 2], [0, 4], [3, 0]],
    });
  });

  it("has no matrix for an empty list or no flows, and passes a matrix through", () => {
    const note = { en: "first run", zh: "第一次计算" };
    expect(transitionMatrix({ users: 1, stages: {}, transitions: [], transitions_note: note })).toBeNull();
    expect(transitionMatrix({ users: 1, stages: {} })).toBeNull();
    const m: TransitionMatrix = { from_date: "a", to_date: "b", rows: ["new"], columns: ["growth"], counts: [[1]] };
    expect(transitionMatrix({ users: 1, stages: {}, transitions: m })).toBe(m);
  });
});

describe("charts and lists", () => {
  it("labels the open last bin of a histogram by its lower bound", () => {
    const bins = [{ from: 0, to: 50, count: 4 }, { from: 50, to: null, count: 1 }];
    const option = histogramOption(bins, String, "users") as { xAxis: { data: string[] } };
    expect(option.xAxis.data).toEqual(["0–50", "≥ 50"]);
  });

  it("labels histogram bars by their bounds", () => {
    const bins = [{ from: 0, to: 100, count: 4 }, { from: 100, to: 200, count: 1 }];
    const option = histogramOption(bins, String, "users") as { xAxis: { data: string[] }; series: { data: number[] }[] };
    expect(option.xAxis.data).toEqual(["0–100", "100–200"]);
    expect(option.series[0].data).toEqual([4, 1]);
    expect(clvBins({ clv: bins })).toBe(bins);
    expect(clvBins(undefined)).toEqual([]);
  });

  it("draws calibration points in predicted order beside the diagonal", () => {
    const option = calibrationOption(
      [{ predicted: 0.8, observed: 0.7, users: 5 }, { predicted: 0.2, observed: 0.25, users: 9 }],
      { predicted: "p", observed: "o", ideal: "i" },
    ) as { series: { data: number[][] }[] };
    expect(option.series[0].data).toEqual([[0, 0], [1, 1]]);
    expect(option.series[1].data).toEqual([[0.2, 0.25], [0.8, 0.7]]);
  });

  it("ranks churn drivers by weight without the zero ones", () => {
    expect(churnDrivers({ a: 0.1, b: 0, c: 0.3 })).toEqual([["c", 0.3], ["a", 0.1]]);
    expect(churnDrivers(undefined)).toEqual([]);
  });

  it("keeps the most common preference values", () => {
    expect(topValues({ a: 1, b: 5, c: 3 }, 2)).toEqual([["b", 5], ["c", 3]]);
  });

  it("falls back to the first tab for an unknown one", () => {
    expect(tabOf("churn")).toBe("churn");
    expect(tabOf("<script>")).toBe("rfm");
  });
});
