// The model outputs a 360 view leads with: RFM class, lifecycle stage, value tier, CLV and churn risk, picked out
// of users.get's model runs (whatever of them the person has), in the console's language where the model gives both.
import type { components } from "../../api/schema";
import type { Lang } from "../segments/format";

export type ModelView = components["schemas"]["ModelView"];

export interface KeyOutput {
  /** i18n key under users.outputs */
  key: "rfm" | "lifecycle" | "value" | "clv" | "churn";
  value: string | number;
  model: string;
}

const text = (v: unknown): string | null => (v === null || v === undefined || v === "" ? null : String(v));

export function keyOutputs(models: ModelView[], lang: Lang): KeyOutput[] {
  const by = new Map(models.map((m) => [m.model, m.outputs as Record<string, unknown>]));
  const out: KeyOutput[] = [];
  const rfm = by.get("rfm");
  const rfmClass = rfm && text(lang === "en" ? rfm.class_en ?? rfm.rfm_class : rfm.class_zh ?? rfm.rfm_class);
  if (rfmClass) out.push({ key: "rfm", value: rfmClass, model: "rfm" });
  const life = by.get("lifecycle");
  const stage = life && text(lang === "en" ? life.stage : life.stage_zh ?? life.stage);
  if (stage) out.push({ key: "lifecycle", value: stage, model: "lifecycle" });
  const tier = text(by.get("value")?.value_tier);
  if (tier) out.push({ key: "value", value: tier, model: "value" });
  const clv = by.get("clv")?.clv;
  if (typeof clv === "number") out.push({ key: "clv", value: clv, model: "clv" });
  const churn = by.get("churn");
  const risk = churn && text(churn.risk_tier ?? churn.tier ?? churn.risk);
  if (risk) out.push({ key: "churn", value: risk, model: "churn" });
  return out;
}
