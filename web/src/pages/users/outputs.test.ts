import { describe, expect, it } from "vitest";
import { keyOutputs, type ModelView } from "./outputs";

const run = (model: string, outputs: Record<string, unknown>): ModelView =>
  ({ model, outputs, model_version: `${model}-1`, run_date: "2026-12-06", previous: null }) as ModelView;

describe("the 360's key model outputs", () => {
  const models = [
    run("rfm", { rfm_class: "LLL", class_zh: "一般挽留", class_en: "General win-back" }),
    run("lifecycle", { stage: "dormancy", stage_zh: "休眠期" }),
    run("value", { value_tier: "low" }),
    run("clv", { clv: 66.69 }),
  ];
  it("reads each model in the console's language", () => {
    expect(keyOutputs(models, "en").map((o) => o.value)).toEqual(["General win-back", "dormancy", "low", 66.69]);
    expect(keyOutputs(models, "zh-CN").map((o) => o.value)).toEqual(["一般挽留", "休眠期", "low", 66.69]);
  });
  it("shows only what the person has", () => {
    expect(keyOutputs([run("churn", { risk_tier: "high" })], "en")).toEqual([{ key: "churn", value: "high", model: "churn" }]);
    expect(keyOutputs([], "en")).toEqual([]);
  });
});
