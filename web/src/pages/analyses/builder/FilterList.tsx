// Conditions on event or profile properties: property, operator, value(s). Numbers are sent as numbers when the
// registry says the property is numeric, so "gt 100" compares numerically.
import { DeleteOutlined, PlusOutlined } from "@ant-design/icons";
import { Button, Input, Select, Space } from "antd";
import { useTranslation } from "react-i18next";
import { FILTER_OPS, type Filter, type FilterOp, type Scalar } from "../definition";
import type { Registry } from "../registry";
import { PropertySelect, propertyType } from "./pickers";

/** A value typed by a person, as the property's type wants it. */
export function typedValue(raw: string, type: string): Scalar {
  if (type === "NUMBER" && raw.trim() !== "" && !Number.isNaN(Number(raw))) return Number(raw);
  if (type === "BOOL" && (raw === "true" || raw === "false")) return raw === "true";
  return raw;
}

/** The value a filter keeps when its operator changes: a list for list operators, none for "is set". */
export function valueForOp(op: FilterOp, value: Filter["value"]): Filter["value"] {
  if (op === "is_set" || op === "is_not_set") return null;
  if (op === "in" || op === "not_in") return Array.isArray(value) ? value : value == null || value === "" ? [] : [value];
  if (op === "between") return Array.isArray(value) && value.length === 2 ? value : ["", ""];
  return Array.isArray(value) ? (value[0] ?? "") : (value ?? "");
}

function ValueInput({ filter, type, onChange }: { filter: Filter; type: string; onChange: (v: Filter["value"]) => void }) {
  const { t } = useTranslation();
  const label = t("analyses.builder.value");
  if (filter.op === "is_set" || filter.op === "is_not_set") return null;
  if (filter.op === "in" || filter.op === "not_in") {
    const values = Array.isArray(filter.value) ? filter.value.map(String) : [];
    return (
      <Select
        mode="tags"
        value={values}
        onChange={(vs: string[]) => onChange(vs.map((v) => typedValue(v, type)))}
        style={{ minWidth: 200 }}
        placeholder={t("analyses.builder.values")}
        aria-label={label}
        open={false}
      />
    );
  }
  if (filter.op === "between") {
    const [lo, hi] = Array.isArray(filter.value) ? filter.value : ["", ""];
    return (
      <Space>
        <Input style={{ width: 100 }} value={String(lo ?? "")} aria-label={label}
          onChange={(e) => onChange([typedValue(e.target.value, type), hi ?? ""])} />
        <Input style={{ width: 100 }} value={String(hi ?? "")} aria-label={label}
          onChange={(e) => onChange([lo ?? "", typedValue(e.target.value, type)])} />
      </Space>
    );
  }
  return (
    <Input
      style={{ width: 180 }}
      value={filter.value === null || filter.value === undefined ? "" : String(filter.value)}
      onChange={(e) => onChange(typedValue(e.target.value, type))}
      placeholder={label}
      aria-label={label}
    />
  );
}

interface Props {
  registry: Registry;
  filters: Filter[];
  onChange: (filters: Filter[]) => void;
  testId: string;
}

export function FilterList({ registry, filters, onChange, testId }: Props) {
  const { t } = useTranslation();
  const set = (i: number, next: Filter) => onChange(filters.map((f, j) => (i === j ? next : f)));
  return (
    <Space orientation="vertical" size={4} data-testid={testId}>
      {filters.map((f, i) => (
        <Space key={i} wrap>
          <PropertySelect
            registry={registry}
            property={f.property}
            source={f.source}
            onChange={(property, source) => set(i, { ...f, property, source })}
          />
          <Select
            value={f.op}
            style={{ width: 130 }}
            options={FILTER_OPS.map((op) => ({ value: op, label: t(`analyses.op.${op}`) }))}
            onChange={(op: FilterOp) => set(i, { ...f, op, value: valueForOp(op, f.value) })}
            aria-label={t("analyses.builder.operator")}
          />
          <ValueInput
            filter={f}
            type={propertyType(registry, f.property, f.source)}
            onChange={(value) => set(i, { ...f, value })}
          />
          <Button
            type="text"
            icon={<DeleteOutlined />}
            aria-label={t("common.remove")}
            onClick={() => onChange(filters.filter((_, j) => j !== i))}
          />
        </Space>
      ))}
      <Button
        type="dashed"
        size="small"
        icon={<PlusOutlined />}
        onClick={() => onChange([...filters, { property: "", op: "eq", value: "" }])}
        data-testid={`${testId}-add`}
      >
        {t("analyses.builder.addFilter")}
      </Button>
    </Space>
  );
}
