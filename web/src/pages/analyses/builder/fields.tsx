// Small form pieces the kinds share: an event with its own filters, a breakdown, a duration, a labelled row.
import { FilterOutlined } from "@ant-design/icons";
import { Badge, Button, InputNumber, Select, Space, Typography } from "antd";
import { useState, type ReactNode } from "react";
import { useTranslation } from "react-i18next";
import type { Breakdown, Duration, EventRef, TimeUnit } from "../definition";
import type { Registry } from "../registry";
import { FilterList } from "./FilterList";
import { EventSelect, PropertySelect } from "./pickers";

export function Row({ label, children }: { label: string; children: ReactNode }) {
  return (
    <div style={{ display: "flex", gap: 12, alignItems: "flex-start", marginBottom: 12 }}>
      <Typography.Text strong style={{ width: 120, flex: "none", paddingTop: 5 }}>
        {label}
      </Typography.Text>
      <div style={{ flex: 1, minWidth: 0 }}>{children}</div>
    </div>
  );
}

interface EventRefProps<T extends EventRef> {
  registry: Registry;
  value: T;
  onChange: (value: T) => void;
  testId: string;
  allowAny?: boolean;
  allowClear?: boolean;
  extra?: ReactNode;
}

/** An event with the filters that only apply to it (hidden until asked for or present). */
export function EventRefField<T extends EventRef>({ registry, value, onChange, testId, allowAny, allowClear, extra }: EventRefProps<T>) {
  const { t } = useTranslation();
  const filters = value.filters ?? [];
  const [open, setOpen] = useState(filters.length > 0);
  return (
    <Space orientation="vertical" size={4}>
      <Space wrap>
        <EventSelect
          registry={registry}
          value={value.event}
          onChange={(event) => onChange({ ...value, event })}
          allowAny={allowAny}
          allowClear={allowClear}
          testId={testId}
        />
        <Badge count={filters.length} size="small">
          <Button
            icon={<FilterOutlined />}
            onClick={() => setOpen(!open)}
            aria-label={t("analyses.builder.eventFilters")}
            aria-expanded={open}
            data-testid={`${testId}-filters-toggle`}
          />
        </Badge>
        {extra}
      </Space>
      {open && (
        <div style={{ paddingLeft: 16 }}>
          <FilterList
            registry={registry}
            filters={filters}
            onChange={(next) => onChange({ ...value, filters: next })}
            testId={`${testId}-filters`}
          />
        </div>
      )}
    </Space>
  );
}

export function BreakdownField({ registry, value, onChange }: {
  registry: Registry;
  value: Breakdown | null | undefined;
  onChange: (value: Breakdown | null) => void;
}) {
  return (
    <PropertySelect
      registry={registry}
      property={value?.property ?? ""}
      source={value?.source}
      allowClear
      onChange={(property, source) => onChange(property ? { property, source } : null)}
      testId="analysis-breakdown"
    />
  );
}

const UNITS: TimeUnit[] = ["minute", "hour", "day", "week"];

export function DurationField({ value, onChange, testId }: { value: Duration; onChange: (v: Duration) => void; testId: string }) {
  const { t } = useTranslation();
  return (
    <Space.Compact data-testid={testId}>
      <InputNumber
        min={1}
        value={value.value}
        onChange={(v) => v && onChange({ ...value, value: v })}
        aria-label={t("analyses.builder.amount")}
      />
      <Select
        value={value.unit}
        style={{ width: 100 }}
        options={UNITS.map((u) => ({ value: u, label: t(`analyses.unit.${u}`) }))}
        onChange={(unit: TimeUnit) => onChange({ ...value, unit })}
        aria-label={t("analyses.builder.unit")}
      />
    </Space.Compact>
  );
}

/** A select over fixed choices whose labels are translation keys `${prefix}.${choice}`. */
export function Choice<T extends string>({ value, choices, prefix, onChange, label, testId, width = 160 }: {
  value: T;
  label: string;
  choices: readonly T[];
  prefix: string;
  onChange: (v: T) => void;
  testId?: string;
  width?: number;
}) {
  const { t } = useTranslation();
  return (
    <Select
      value={value}
      style={{ width }}
      options={choices.map((c) => ({ value: c, label: t(`${prefix}.${c}`) }))}
      onChange={onChange}
      data-testid={testId}
      aria-label={label}
    />
  );
}
