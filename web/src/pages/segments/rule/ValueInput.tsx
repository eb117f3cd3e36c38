// The value side of a property, tag or model condition, shaped by its operator: nothing (is set), one value, a
// list (in), two values (between) or a number of days (in the last N days).
import { Input, InputNumber, Select, Space } from "antd";
import { useTranslation } from "react-i18next";
import { coerce, valueShape, type Scalar, type Value } from "./ruleModel";

interface Props {
  op: string;
  value: Value | undefined;
  /** The field's type (number, string, bool, enum…), to type what is typed. */
  type?: string;
  /** Known values (an enumeration tag's), offered in a list. */
  options?: string[];
  disabled?: boolean;
  onChange: (value: Value | undefined) => void;
}

const text = (v: unknown) => (v === null || v === undefined ? "" : String(v));

export function ValueInput({ op, value, type, options, disabled, onChange }: Props) {
  const { t } = useTranslation();
  const shape = valueShape(op);
  const choices = (options ?? []).map((o) => ({ value: o, label: o }));

  if (shape === "none") return null;
  if (shape === "days") {
    return (
      <Space.Compact>
        <InputNumber
          min={op === "in_last_days" ? 1 : 0}
          max={3660}
          precision={0}
          value={typeof value === "number" ? value : undefined}
          disabled={disabled}
          onChange={(n) => onChange(typeof n === "number" ? n : 1)}
          data-testid="rule-value"
          aria-label={t("segments.rule.days")}
        />
        <Space.Addon>{t("segments.rule.daysUnit")}</Space.Addon>
      </Space.Compact>
    );
  }
  if (shape === "list") {
    const list = Array.isArray(value) ? value.map(text) : [];
    return (
      <Select
        mode="tags"
        style={{ minWidth: 200 }}
        value={list}
        options={choices}
        disabled={disabled}
        placeholder={t("segments.rule.values")}
        onChange={(next: string[]) => onChange(next.map((v) => coerce(v, type)))}
        data-testid="rule-value"
      />
    );
  }
  if (shape === "range") {
    const [low, high] = Array.isArray(value) ? value : [undefined, undefined];
    const set = (i: 0 | 1, v: string) => {
      const pair: Scalar[] = [low ?? "", high ?? ""].map((x) => x as Scalar);
      pair[i] = coerce(v, type);
      onChange(pair);
    };
    return (
      <Space.Compact data-testid="rule-value">
        <Input style={{ width: 110 }} value={text(low)} disabled={disabled} onChange={(e) => set(0, e.target.value)}
          aria-label={t("segments.rule.low")} placeholder={t("segments.rule.low")} />
        <Input style={{ width: 110 }} value={text(high)} disabled={disabled} onChange={(e) => set(1, e.target.value)}
          aria-label={t("segments.rule.high")} placeholder={t("segments.rule.high")} />
      </Space.Compact>
    );
  }
  if (choices.length) {
    return (
      <Select
        style={{ minWidth: 160 }}
        value={value === "" || value === undefined || value === null ? undefined : text(value)}
        options={choices}
        disabled={disabled}
        showSearch={{ optionFilterProp: "label" }}
        placeholder={t("segments.rule.value")}
        onChange={(v: string) => onChange(coerce(v, type))}
        data-testid="rule-value"
      />
    );
  }
  return (
    <Input
      style={{ width: 180 }}
      value={text(value)}
      disabled={disabled}
      placeholder={t("segments.rule.value")}
      onChange={(e) => onChange(coerce(e.target.value, type))}
      data-testid="rule-value"
      aria-label={t("segments.rule.value")}
    />
  );
}
