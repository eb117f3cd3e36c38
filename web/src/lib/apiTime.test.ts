import { describe, expect, it } from "vitest";
import { apiTime } from "./apiTime";

describe("apiTime", () => {
  it("drops the T and the fraction, keeps anything else as it is", () => {
    expect(apiTime("2026-12-07T09:06:18.778648")).toBe("2026-12-07 09:06:18");
    expect(apiTime("2026-12-07 09:05:07")).toBe("2026-12-07 09:05:07");
    expect(apiTime("2026-12-07T09:06+08:00")).toBe("2026-12-07 09:06");
    expect(apiTime(null)).toBe("—");
    expect(apiTime("soon")).toBe("soon");
  });
});
