import { describe, expect, it } from "vitest";
import { bilingual, formatCount, formatP, formatShare, formatTime, formatValue, langOf, titleOf } from "./format";

describe("people formatting", () => {
  it("separates thousands and keeps one decimal in shares", () => {
    expect(formatCount(1234567, "en")).toBe("1,234,567");
    expect(formatShare(0.057667, "en")).toBe("5.8%");
    expect(formatShare(null, "en")).toBe("—");
  });
  it("writes p-values compactly", () => {
    expect(formatP(6.8e-50)).toBe("< 0.0001");
    expect(formatP(0.012345)).toBe("0.012");
  });
  it("keeps the API's local time, without the offset", () => {
    expect(formatTime("2026-10-25T09:09:38.183000+08:00")).toBe("2026-10-25 09:09:38");
    expect(formatTime("2026-12-06")).toBe("2026-12-06");
    expect(formatValue("2026-10-25T09:09:38+08:00", "en")).toBe("2026-10-25 09:09:38");
  });
  it("renders lists, numbers and missing values", () => {
    expect(formatValue(["a", 2], "en")).toBe("a, 2");
    expect(formatValue(1234.56789, "en")).toBe("1,234.5679");
    expect(formatValue(null, "en")).toBe("—");
  });
  it("picks the console's language", () => {
    expect(langOf("en-US")).toBe("en");
    expect(bilingual({ zh: "中", en: "en" }, "zh-CN")).toBe("中");
    expect(titleOf({ name: "age", title_zh: "", title_en: "Age" }, "zh-CN")).toBe("age");
  });
});
