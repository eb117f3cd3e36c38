import { describe, expect, it } from "vitest";
import {
  addDays, analysisLink, change, comparisonDefinition, formatChange, formatValue, headline, resolveRange, todayFromResult,
  todayIn,
} from "./metrics";
import { sparkPath } from "./sparkline";

describe("headline", () => {
  it("sums a breakdown's totals and marks the money property", () => {
    const def = { kind: "trends", series: [{ event: "order_paid", math: "sum", property: "order_amount" }] };
    const result = {
      series: [
        { series: "A", breakdown: "x", data: [1, 2], total: 3 },
        { series: "A", breakdown: "y", data: [10, 20], total: 30 },
      ],
    };
    expect(headline(def, result, "order_amount")).toEqual({
      value: 33, format: "money", measure: "total", spark: [11, 22],
    });
    expect(headline(def, result, "other").format).toBe("count");
    expect(headline(def, result, undefined).format).toBe("money");
  });

  it("averages daily measures and formulas", () => {
    const dau = { kind: "trends", series: [{ event: "$any", math: "dau" }, { event: "$any", math: "mau" }] };
    const result = { series: [{ series: "A", data: [2, 4] }, { series: "B", data: [10, 10] }] };
    expect(headline(dau, result, null)).toMatchObject({ value: 3, measure: "dailyAverage", spark: [2, 4] });
    const ratio = { ...dau, formula: "A/B*100" };
    expect(headline(ratio, { series: [{ series: "formula", data: [40, null, 60] }] }, null)).toMatchObject({
      value: 50, format: "percent",
    });
  });

  it("reads a funnel's conversion and a retention's first period", () => {
    const funnel = headline({ kind: "funnel" }, { conversion_rate: 0.25, steps: [{ count: 8 }, { count: 2 }] }, null);
    expect(funnel).toEqual({ value: 0.25, format: "rate", measure: "conversion", spark: [8, 2] });
    const retention = headline({ kind: "retention" }, { average: [{ rates: [1, 0.4, 0.3, null] }] }, null);
    expect(retention).toEqual({ value: 0.4, format: "rate", measure: "firstPeriod", spark: [1, 0.4, 0.3] });
    expect(headline({ kind: "paths" }, {}, null).value).toBeNull();
    expect(headline({ kind: "trends" }, null, null).value).toBeNull();
  });
});

describe("periods", () => {
  it("finds today in the project's zone", () => {
    const instant = new Date("2026-12-06T17:30:00Z");
    expect(todayIn("Asia/Shanghai", instant)).toBe("2026-12-07");
    expect(todayIn("America/New_York", instant)).toBe("2026-12-06");
  });

  it("reads today off a daily trends result", () => {
    const def = { kind: "trends", date_range: { last: 2, include_today: false } };
    expect(todayFromResult(def, { buckets: ["2026-12-05", "2026-12-06"] })).toBe("2026-12-07");
    const current = { ...def, date_range: { last: 2, include_today: true } };
    expect(todayFromResult(current, { buckets: ["2026-12-06", "2026-12-07"] })).toBe("2026-12-07");
    expect(todayFromResult({ ...def, interval: "week" }, { buckets: ["2026-11-30"] })).toBeNull();
    expect(todayFromResult({ kind: "funnel", date_range: { last: 2 } }, {})).toBeNull();
    expect(todayFromResult(def, { buckets: [] })).toBeNull();
  });

  it("resolves ranges like the API and shifts the comparison", () => {
    expect(addDays("2026-03-01", -1)).toBe("2026-02-28");
    expect(resolveRange({ last: 7 }, "2026-12-07")).toEqual(["2026-11-30", "2026-12-06"]);
    expect(resolveRange({ last: 7, include_today: true }, "2026-12-07")).toEqual(["2026-12-01", "2026-12-07"]);
    const def = { kind: "trends", date_range: { last: 7, include_today: false } };
    expect(comparisonDefinition(def, "previous", "2026-12-07")).toEqual({
      kind: "trends", date_range: { from: "2026-11-23", to: "2026-11-29" },
    });
    expect(comparisonDefinition(def, "year", "2026-12-07")?.date_range).toEqual({
      from: "2025-12-01", to: "2025-12-07",
    });
    expect(comparisonDefinition(def, "none", "2026-12-07")).toBeNull();
    const fixed = { kind: "funnel", date_range: { from: "2026-11-01", to: "2026-11-10" } };
    expect(comparisonDefinition(fixed, "previous", "2026-12-07")?.date_range).toEqual({
      from: "2026-10-22", to: "2026-10-31",
    });
  });
});

describe("change and formats", () => {
  it("is relative for counts and in points for rates", () => {
    expect(change(120, 100, "count")).toBeCloseTo(0.2);
    expect(change(0.3, 0.25, "rate")).toBeCloseTo(5);
    expect(change(50, 48, "percent")).toBeCloseTo(2);
    expect(change(5, 0, "count")).toBeNull();
    expect(change(null, 3, "count")).toBeNull();
  });

  it("formats for people", () => {
    expect(formatValue(1234567, "count", "en-US")).toBe("1,234,567");
    expect(formatValue(0.2534, "rate", "en-US")).toBe("25.3%");
    expect(formatValue(47.06, "percent", "en-US")).toBe("47.1%");
    expect(formatValue(6556.7, "money", "en-US")).toBe("6,556.70");
    expect(formatValue(null, "count", "en-US")).toBe("—");
    expect(formatChange(0.123, "count", "en-US")).toBe("+12.3%");
    expect(formatChange(-1.25, "rate", "en-US")).toBe("−1.3");
  });

  it("links to the analysis builder with the definition in q", () => {
    const url = new URL(analysisLink({ kind: "funnel", steps: [] }, "shop"), "http://x");
    expect(url.pathname).toBe("/analyses/new");
    expect(url.searchParams.get("project")).toBe("shop");
    expect(JSON.parse(url.searchParams.get("q") ?? "")).toEqual({ kind: "funnel", steps: [] });
  });

  it("draws a sparkline inside its box", () => {
    expect(sparkPath([0, 10], 100, 20)).toBe("M2.0,18.0 L98.0,2.0");
    expect(sparkPath([5, 5], 100, 20)).toBe("M2.0,10.0 L98.0,10.0");
  });
});

describe("retention without an average", () => {
  it("weighs the cohorts, leaving out the latest when no cell is complete", () => {
    const result = {
      average: [{ rates: [null, null] }],
      cohorts: [
        { cohort: "a", breakdown: null, size: 10, counts: [10, 5], complete: [false, false] },
        { cohort: "b", breakdown: null, size: 30, counts: [30, 9], complete: [false, false] },
        { cohort: "c", breakdown: null, size: 50, counts: [50, 0], complete: [false, false] },
      ],
    };
    expect(headline({ kind: "retention" }, result, null).value).toBeCloseTo(14 / 40);
    const complete = { ...result, cohorts: result.cohorts.map((c, i) => ({ ...c, complete: [true, i === 2] })) };
    expect(headline({ kind: "retention" }, complete, null).value).toBeCloseTo(0);
  });
});
