import { describe, expect, it } from "vitest";
import { defaultDefinition, isRunnable, KINDS, parseDefinition, peopleDefinition, toRequest, type FunnelDef } from "./definition";

describe("definitions", () => {
  it("have a first form for every kind that runs once its events are chosen", () => {
    for (const kind of KINDS) {
      const def = defaultDefinition(kind, "app_start", "checkout");
      expect(def.kind).toBe(kind);
      if (kind !== "drilldown") expect(isRunnable(def), kind).toBe(true);
      expect(isRunnable(defaultDefinition(kind)) || kind === "paths", kind).toBe(kind === "paths");
    }
  });

  it("leave incomplete filters and empty options out of the request", () => {
    const def: FunnelDef = {
      kind: "funnel", date_range: { last: 7 }, breakdown: { property: "" },
      filters: [{ property: "$os", op: "eq", value: "iOS" }, { property: "", op: "eq", value: "x" }],
      steps: [
        { event: "a", filters: [{ property: "p", op: "in", value: [] }], name: "" },
        { event: "b", filters: [{ property: "q", op: "is_set", value: "ignored" }] },
      ],
    };
    expect(toRequest(def)).toEqual({
      kind: "funnel", date_range: { last: 7 },
      filters: [{ property: "$os", op: "eq", value: "iOS" }],
      steps: [{ event: "a" }, { event: "b", filters: [{ property: "q", op: "is_set" }] }],
    });
  });

  it("send a drill-down without a date range (it compares its own periods)", () => {
    const def = { ...defaultDefinition("drilldown", "checkout"), dimensions: [{ property: "$os" }] };
    expect(toRequest(def)).toEqual({
      kind: "drilldown", series: { event: "checkout", math: "total" }, current: { last: 7 }, dimensions: [{ property: "$os" }],
    });
  });

  it("ask for the people behind a funnel's drop-off", () => {
    const def = defaultDefinition("funnel", "a", "b");
    expect(peopleDefinition(def, { kind: "funnel", step: 2, status: "dropped" })).toMatchObject({
      kind: "funnel", people: { step: 2, status: "dropped" },
    });
    const cohort = peopleDefinition(defaultDefinition("retention", "a"), { kind: "retention", cohort: "2026-11-02", period: null });
    expect((cohort as { people: object }).people).toEqual({ cohort: "2026-11-02" });
    expect(() => peopleDefinition(def, { kind: "stickiness", intervals: 2 })).toThrow();
  });

  it("read a definition from a link, refusing an unknown kind", () => {
    expect(parseDefinition({ kind: "nope" })).toBeNull();
    expect(parseDefinition("x")).toBeNull();
    const def = parseDefinition({ kind: "trends", series: [{ event: "a" }] });
    expect(def).toMatchObject({ kind: "trends", date_range: { last: 30 }, series: [{ event: "a" }] });
  });
});
