import { describe, expect, it } from "vitest";
import { formatters } from "./format";

describe("formatters", () => {
  const en = formatters("en");
  it("separates thousands and keeps two decimals at most", () => {
    expect(en.number(1234567)).toBe("1,234,567");
    expect(en.number(3.14159)).toBe("3.14");
    expect(en.number(null)).toBe("–");
  });
  it("writes percentages with one decimal", () => {
    expect(en.percent(0.46124)).toBe("46.1%");
    expect(en.percent(1)).toBe("100.0%");
  });
  it("writes money with two decimals", () => {
    expect(en.money(1739.6)).toBe("1,739.60");
  });
  it("writes a duration in its largest unit", () => {
    expect(en.duration(90)).toBe("1.5 min");
    expect(en.duration(7200)).toBe("2 hr");
    expect(en.duration(0.5)).toBe("0.5 sec");
    expect(formatters("zh-CN").duration(86400)).toContain("1");
  });
});
