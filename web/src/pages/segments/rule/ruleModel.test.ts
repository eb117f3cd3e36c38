import { describe, expect, it } from "vitest";
import {
  appendAt, asGroup, coerce, countConditions, getAt, isComplete, newCondition, toggleNot, updateAt, valueForOp,
  valueShape, type Group, type Rule,
} from "./ruleModel";

const tag: Rule = { type: "tag", tag: "age_band", op: "eq", value: "56+" };
const ev: Rule = { type: "event", event: "order_paid", did: true, count: { op: "gte", value: 3 }, window: { last: 30 } };

describe("the rule builder's model", () => {
  it("edits a single condition as a group", () => {
    expect(asGroup(tag)).toEqual({ all: [tag] });
    expect(asGroup(null)).toEqual({ all: [] });
    expect(asGroup({ any: [tag] })).toEqual({ any: [tag] });
  });

  it("adds, replaces and removes by path, through nested and negated groups", () => {
    let g: Group = { all: [tag] };
    g = appendAt(g, [], { not: { any: [] } });
    g = appendAt(g, [1], ev);
    expect(g).toEqual({ all: [tag, { not: { any: [ev] } }] });
    expect(getAt(g, [1, 0])).toEqual(ev);
    g = updateAt(g, [1, 0], { ...ev, did: false } as Rule);
    expect(getAt(g, [1, 0])).toMatchObject({ did: false });
    g = updateAt(g, [0], null);
    expect(g).toEqual({ all: [{ not: { any: [{ ...ev, did: false }] } }] });
    expect(countConditions(g)).toBe(1);
  });

  it("negates and un-negates an item", () => {
    expect(toggleNot(tag)).toEqual({ not: tag });
    expect(toggleNot({ not: tag })).toEqual(tag);
  });

  it("types values by the field's type", () => {
    expect(coerce("3", "number")).toBe(3);
    expect(coerce("3", "string")).toBe("3");
    expect(coerce("3.5", undefined)).toBe(3.5);
    expect(coerce("true", "bool")).toBe(true);
    expect(coerce("上海", "number")).toBe("上海");
  });

  it("reshapes the value when the operator changes", () => {
    expect(valueShape("between")).toBe("range");
    expect(valueForOp("in", "a")).toEqual(["a"]);
    expect(valueForOp("eq", ["a", "b"])).toBe("a");
    expect(valueForOp("between", [5])).toEqual([5, 0]);
    expect(valueForOp("is_set", "a")).toBeUndefined();
    expect(valueForOp("in_last_days", "x")).toBe(7);
  });

  it("waits for every condition to name what it reads", () => {
    expect(isComplete({ all: [tag, newCondition("event")] })).toBe(false);
    expect(isComplete({ all: [tag, { not: ev }] })).toBe(true);
    expect(isComplete(newCondition("segment"))).toBe(false);
    expect(isComplete({ type: "tag", tag: "age_band", op: "eq", value: "" })).toBe(false);
    expect(isComplete({ type: "tag", tag: "age_band", op: "in", value: [] })).toBe(false);
    expect(isComplete({ type: "tag", tag: "age_band", op: "is_set" })).toBe(true);
  });
});
