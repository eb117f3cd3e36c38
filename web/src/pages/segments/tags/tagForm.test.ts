import { describe, expect, it } from "vitest";
import { distributionOption, EMPTY_TAG, formFromDefinition, tagBody } from "./tagForm";

const behaviour = {
  name: "orders_30d", title_zh: "近30天支付订单数", title_en: "Paid orders, last 30 days", description: "",
  kind: "behaviour", type: "number",
  source: { from: "events", event: "order_paid", agg: "count", filters: [{ property: "x", op: "eq", value: 1, source: "event" }],
    window: { last: 30 } },
};

describe("the tag form", () => {
  it("round-trips a behaviour tag and keeps its filters", () => {
    const form = formFromDefinition(behaviour);
    expect(form).toMatchObject({ from: "events", event: "order_paid", agg: "count", windowDays: 30 });
    const body = tagBody({ ...form, windowDays: 7 }, "default", behaviour);
    expect(body.source).toEqual({ ...behaviour.source, window: { last: 7 } });
    expect(body).toMatchObject({ project: "default", name: "orders_30d", kind: "behaviour", type: "number" });
  });

  it("sends a property only with an aggregate over values", () => {
    const v = { ...EMPTY_TAG, name: "n", event: "order_paid", agg: "count" as const, property: "amount" };
    expect(tagBody(v, "p").source).not.toHaveProperty("property");
    expect(tagBody({ ...v, agg: "sum" }, "p").source).toMatchObject({ property: "amount" });
  });

  it("builds basic and predictive sources, with an enumeration's values", () => {
    const basic = tagBody({ ...EMPTY_TAG, name: "age", kind: "basic", from: "profile", property: "birthday",
      derive: "years_since" }, "p");
    expect(basic.source).toEqual({ from: "profile", property: "birthday", derive: "years_since" });
    const churn = tagBody({ ...EMPTY_TAG, name: "churn", kind: "predictive", type: "enum", from: "model",
      model: "churn", field: "risk_tier", values: ["low", "high"] }, "p");
    expect(churn.source).toEqual({ from: "model", model: "churn", field: "risk_tier" });
    expect(churn.values).toEqual(["low", "high"]);
  });

  it("charts each kind of distribution", () => {
    const counts = distributionOption({ kind: "counts", values: [{ value: "a", count: 2 }], other: 1, distinct: 3 },
      "en", "other") as { xAxis: { data: string[] }; series: Array<{ data: number[] }> };
    expect(counts.xAxis.data).toEqual(["a", "other"]);
    expect(counts.series[0].data).toEqual([2, 1]);
    const numeric = distributionOption({ kind: "numeric", histogram: [{ from: 1, to: 2.5, count: 4 }], min: 1, max: 2.5,
      mean: 2, quantiles: {} }, "en", "other") as { xAxis: { data: string[] } };
    expect(numeric.xAxis.data).toEqual(["1–2.5"]);
  });
});
