import { describe, expect, it } from "vitest";
import { funnel, text } from "./fixtures";
import { drilldownTable, funnelTable, lifecycleTable, retentionTable, trendsTable } from "./tables";

describe("tables", () => {
  it("list a funnel's steps with rates and the people behind each number", () => {
    const table = funnelTable(funnel, text);
    expect(table.rows.map((r) => r.cells.count)).toEqual(["100", "70", "40"]);
    expect(table.rows[1].cells.fromFirst).toBe("70.0%");
    expect(table.rows[0].people?.map((p) => p.target)).toEqual([
      { kind: "funnel", step: 1, status: "converted", breakdown: undefined },
    ]);
    expect(table.rows[2].people?.[1].target).toEqual({ kind: "funnel", step: 3, status: "dropped", breakdown: undefined });
  });

  it("put a trend's previous period under its current one", () => {
    const table = trendsTable({
      interval: "day", buckets: ["d1"], partial: [], compare_buckets: ["d0"],
      series: [{ series: "A", label: "app_start", breakdown: null, data: [1200], total: 1200 }],
      compare: [{ series: "A", label: "app_start", breakdown: null, data: [1000], total: 1000 }],
    }, text);
    expect(table.rows.map((r) => r.cells.d1)).toEqual(["1,200", "1,000"]);
    expect(table.rows[1].cells.series).toContain("previousPeriod");
  });

  it("offer a retention cohort and each period with returns as segments", () => {
    const table = retentionTable({
      interval: "week", periods: 2, average: [],
      cohorts: [{ cohort: "c1", breakdown: null, size: 10, counts: [10, 3, 0], rates: [1, 0.3, 0], complete: [true, true, true] }],
    }, text);
    expect(table.rows[0].cells.p1).toBe("30.0% (3)");
    expect(table.rows[0].people?.map((p) => p.target)).toEqual([
      { kind: "retention", cohort: "c1", period: null, breakdown: undefined },
      { kind: "retention", cohort: "c1", period: 1, breakdown: undefined },
    ]);
  });

  it("offer each non-empty lifecycle status as a segment", () => {
    const table = lifecycleTable({
      interval: "day", buckets: [{ bucket: "b", new: 2, returning: 0, resurrecting: null, dormant: -1, complete: true }],
    }, text);
    expect(table.rows[0].people?.map((p) => p.target)).toEqual([
      { kind: "lifecycle", bucket: "b", status: "new" },
      { kind: "lifecycle", bucket: "b", status: "dormant" },
    ]);
  });

  it("name a drill-down's dimensions by their display names and its values' change", () => {
    const table = drilldownTable({
      metric: "m", current: { start: "a", end: "b", value: 10 }, baseline: { start: "c", end: "d", value: 8 },
      change: 2, change_pct: 0.25, verdict: "noise", summary: {},
      dimensions: [{ property: "$os", source: "event", root_cause: false, values: [
        { value: "iOS", label: "iOS", current: 6, baseline: 4, change: 2, change_pct: 0.5, contribution: 1, significant: false },
      ] }],
    }, text);
    expect(table.rows[0].cells).toMatchObject({ dimension: "OS", value: "iOS", change: "2 (50.0%)", contribution: "100.0%" });
  });
});
