// One condition of a rule, as a row of inputs for its type: a tag, property or model output compared with a value;
// an event done (or not) so many times in the last N days; a first time; a stop; membership of another segment.
// Types the form does not cover (sequence, regular, restarted) are edited as JSON.
import { Input, InputNumber, Select, Space, Typography } from "antd";
import { useState } from "react";
import { useTranslation } from "react-i18next";
import { langOf, titleOf } from "../format";
import type { Registry } from "../registry";
import {
  COUNT_OPS, VALUE_OPS, valueForOp, type Condition, type EventCondition, type FirstTimeCondition,
  type SegmentCondition, type StoppedCondition, type ValueCondition,
} from "./ruleModel";
import { ValueInput } from "./ValueInput";

interface Props {
  condition: Condition;
  registry: Registry;
  disabled?: boolean;
  onChange: (next: Condition) => void;
}

/** Model output fields people usually segment on, offered when the model is picked (any field may be typed). */
export const MODEL_FIELDS: Record<string, string[]> = {
  rfm: ["rfm_class", "r_score", "f_score", "m_score", "rfm_cell", "recency_days", "frequency", "monetary"],
  lifecycle: ["stage", "days_since_active", "days_since_purchase", "orders"],
  value: ["value_tier", "value_score", "unit_price"],
  clv: ["clv", "p_alive", "expected_purchases", "expected_value"],
  churn: ["risk_tier", "risk", "probability"],
  activity: ["activity_score", "active_days", "sessions", "low_frequency"],
  preference: ["category", "price_band", "touchpoint", "activity_type", "time_of_day"],
};

export function ConditionEditor({ condition, registry, disabled, onChange }: Props) {
  switch (condition.type) {
    case "tag":
    case "property":
    case "model":
      return <ValueConditionEditor condition={condition as ValueCondition} registry={registry} disabled={disabled}
        onChange={onChange} />;
    case "event":
      return <EventEditor condition={condition as EventCondition} registry={registry} disabled={disabled}
        onChange={onChange} />;
    case "first_time":
    case "stopped":
      return <OnceEditor condition={condition as FirstTimeCondition | StoppedCondition} registry={registry}
        disabled={disabled} onChange={onChange} />;
    case "segment":
      return <SegmentEditor condition={condition as SegmentCondition} registry={registry} disabled={disabled}
        onChange={onChange} />;
    default:
      return <JsonConditionEditor condition={condition} disabled={disabled} onChange={onChange} />;
  }
}

function OpSelect({ op, ops, disabled, onChange }: { op: string; ops: readonly string[]; disabled?: boolean;
  onChange: (op: string) => void }) {
  const { t } = useTranslation();
  return (
    <Select
      style={{ minWidth: 130 }}
      value={op}
      disabled={disabled}
      options={ops.map((o) => ({ value: o, label: t(`segments.ops.${o}`) }))}
      onChange={onChange}
      popupMatchSelectWidth={false}
      data-testid="rule-op"
      aria-label={t("segments.rule.operator")}
    />
  );
}

function ValueConditionEditor({ condition: c, registry, disabled, onChange }: Props & { condition: ValueCondition }) {
  const { t, i18n } = useTranslation();
  const lang = langOf(i18n.language);
  let subject;
  let type: string | undefined;
  let options: string[] | undefined;
  if (c.type === "tag") {
    const tag = registry.tags.find((x) => x.name === c.tag);
    type = tag?.type;
    const values = (tag?.definition as { values?: string[] } | undefined)?.values;
    options = tag?.type === "bool" ? ["true", "false"] : values ?? undefined;
    subject = (
      <Select style={{ minWidth: 200 }} value={c.tag || undefined} disabled={disabled}
        placeholder={t("segments.rule.pickTag")} showSearch={{ optionFilterProp: "label" }}
        options={registry.tags.map((x) => ({ value: x.name, label: `${titleOf(x, lang)} (${x.name})` }))}
        onChange={(tag: string) => onChange({ ...c, tag })} data-testid="rule-tag" popupMatchSelectWidth={false} />
    );
  } else if (c.type === "property") {
    const prop = registry.userProperties.find((x) => x.name === c.property);
    type = prop?.type;
    options = prop?.type?.toLowerCase() === "bool" ? ["true", "false"] : undefined;
    const names = ["first_seen", "last_seen", ...registry.userProperties.map((p) => p.name)];
    subject = (
      <Select style={{ minWidth: 180 }} value={c.property || undefined} disabled={disabled}
        placeholder={t("segments.rule.pickProperty")} showSearch={{ optionFilterProp: "label" }}
        options={Array.from(new Set(names)).map((n) => {
          const p = registry.userProperties.find((x) => x.name === n);
          const display = p ? (lang === "en" ? p.display_en : p.display_zh) : null;
          return { value: n, label: display ? `${display} (${n})` : n };
        })}
        onChange={(property: string) => onChange({ ...c, property })} data-testid="rule-property"
        popupMatchSelectWidth={false} />
    );
  } else {
    subject = (
      <>
        <Select style={{ minWidth: 120 }} value={c.model || undefined} disabled={disabled}
          placeholder={t("segments.rule.pickModel")}
          options={registry.models.map((m) => ({ value: m, label: m in MODEL_FIELDS ? t(`segments.models.${m}`) : m }))}
          onChange={(model: string) => onChange({ ...c, model, field: "" })} data-testid="rule-model" />
        <Select style={{ minWidth: 140 }} value={c.field || undefined} disabled={disabled} mode={undefined}
          placeholder={t("segments.rule.pickField")} showSearch={{ optionFilterProp: "label" }}
          options={(MODEL_FIELDS[c.model ?? ""] ?? []).map((f) => ({ value: f, label: f }))}
          onChange={(field: string) => onChange({ ...c, field })} data-testid="rule-field" />
      </>
    );
  }
  return (
    <Space wrap>
      {subject}
      <OpSelect op={c.op} ops={VALUE_OPS} disabled={disabled}
        onChange={(op) => onChange({ ...c, op, value: valueForOp(op, c.value) })} />
      <ValueInput op={c.op} value={c.value} type={type} options={options} disabled={disabled}
        onChange={(value) => onChange({ ...c, value })} />
    </Space>
  );
}

function EventSelect({ value, registry, disabled, onChange }: { value: string; registry: Registry;
  disabled?: boolean; onChange: (event: string) => void }) {
  const { t, i18n } = useTranslation();
  const lang = langOf(i18n.language);
  const options = [
    { value: "$any", label: t("segments.rule.anyEvent") },
    ...registry.events.map((e) => {
      const display = lang === "en" ? e.display_en : e.display_zh;
      return { value: e.event, label: display ? `${display} (${e.event})` : e.event };
    }),
  ];
  return (
    <Select style={{ minWidth: 180 }} value={value || undefined} disabled={disabled} options={options}
      placeholder={t("segments.rule.pickEvent")} showSearch={{ optionFilterProp: "label" }}
      onChange={onChange} data-testid="rule-event" popupMatchSelectWidth={false} />
  );
}

function LastDays({ value, disabled, onChange }: { value: number | undefined; disabled?: boolean;
  onChange: (n: number) => void }) {
  const { t } = useTranslation();
  return (
    <Space.Compact>
      <Space.Addon>{t("segments.rule.inLast")}</Space.Addon>
      <InputNumber min={1} max={3660} precision={0} value={value} disabled={disabled} style={{ width: 90 }}
        onChange={(n) => onChange(typeof n === "number" ? n : 1)} data-testid="rule-window"
        aria-label={t("segments.rule.windowDays")} />
      <Space.Addon>{t("segments.rule.daysUnit")}</Space.Addon>
    </Space.Compact>
  );
}

function EventEditor({ condition: c, registry, disabled, onChange }: Props & { condition: EventCondition }) {
  const { t } = useTranslation();
  const count = c.count ?? { op: "gte", value: 1 };
  const [low, high] = Array.isArray(count.value) ? count.value : [count.value, count.value];
  const setCount = (op: string, v: number | number[]) => onChange({ ...c, count: { op, value: v } });
  return (
    <Space wrap>
      <Select value={c.did === false ? "no" : "yes"} disabled={disabled} style={{ width: 110 }}
        options={[{ value: "yes", label: t("segments.rule.did") }, { value: "no", label: t("segments.rule.didNot") }]}
        onChange={(v) => onChange({ ...c, did: v === "yes" })} data-testid="rule-did" />
      <EventSelect value={c.event} registry={registry} disabled={disabled} onChange={(event) => onChange({ ...c, event })} />
      <LastDays value={c.window?.last} disabled={disabled} onChange={(last) => onChange({ ...c, window: { last } })} />
      <Typography.Text>{t("segments.rule.times")}</Typography.Text>
      <OpSelect op={count.op} ops={COUNT_OPS} disabled={disabled}
        onChange={(op) => setCount(op, op === "between" ? [low, Math.max(low, high)] : low)} />
      <InputNumber min={0} precision={0} value={low} disabled={disabled} style={{ width: 80 }}
        onChange={(n) => setCount(count.op, count.op === "between" ? [n ?? 0, high] : (n ?? 0))}
        data-testid="rule-count" aria-label={t("segments.rule.times")} />
      {count.op === "between" && (
        <InputNumber min={0} precision={0} value={high} disabled={disabled} style={{ width: 80 }}
          onChange={(n) => setCount("between", [low, n ?? 0])} aria-label={t("segments.rule.high")} />
      )}
    </Space>
  );
}

function OnceEditor({ condition: c, registry, disabled, onChange }: Props & {
  condition: FirstTimeCondition | StoppedCondition }) {
  const { t } = useTranslation();
  const setEvent = (event: string) => onChange({ ...c, event });
  if (c.type === "first_time") {
    return (
      <Space wrap>
        <Typography.Text>{t("segments.rule.firstTimeLead")}</Typography.Text>
        <EventSelect value={c.event} registry={registry} disabled={disabled} onChange={setEvent} />
        <LastDays value={c.window?.last} disabled={disabled} onChange={(last) => onChange({ ...c, window: { last } })} />
      </Space>
    );
  }
  return (
    <Space wrap>
      <Typography.Text>{t("segments.rule.stoppedLead")}</Typography.Text>
      <EventSelect value={c.event} registry={registry} disabled={disabled} onChange={setEvent} />
      <LastDays value={c.days} disabled={disabled} onChange={(days) => onChange({ ...c, days })} />
    </Space>
  );
}

function SegmentEditor({ condition: c, registry, disabled, onChange }: Props & { condition: SegmentCondition }) {
  const { t } = useTranslation();
  return (
    <Space wrap>
      <Select value={c.member ? "in" : "out"} disabled={disabled} style={{ width: 130 }}
        options={[{ value: "in", label: t("segments.rule.inSegment") }, { value: "out", label: t("segments.rule.notInSegment") }]}
        onChange={(v) => onChange({ ...c, member: v === "in" })} />
      <Select style={{ minWidth: 200 }} value={c.segment || undefined} disabled={disabled}
        placeholder={t("segments.rule.pickSegment")} showSearch={{ optionFilterProp: "label" }}
        options={registry.segments.map((s) => ({ value: s.id, label: s.name }))}
        onChange={(segment: number) => onChange({ ...c, segment })} data-testid="rule-segment" />
    </Space>
  );
}

function JsonConditionEditor({ condition, disabled, onChange }: Omit<Props, "registry">) {
  const { t } = useTranslation();
  const [draft, setDraft] = useState(() => JSON.stringify(condition));
  const [bad, setBad] = useState(false);
  return (
    <Space orientation="vertical" style={{ width: "100%" }}>
      <Typography.Text type="secondary">{t(`segments.conditionTypes.${condition.type}`)}</Typography.Text>
      <Input.TextArea
        value={draft}
        disabled={disabled}
        autoSize={{ minRows: 2, maxRows: 8 }}
        status={bad ? "error" : undefined}
        aria-label={t("segments.rule.json")}
        onChange={(e) => {
          setDraft(e.target.value);
          try {
            const parsed = JSON.parse(e.target.value) as Condition;
            setBad(false);
            onChange(parsed);
          } catch {
            setBad(true);
          }
        }}
      />
    </Space>
  );
}
