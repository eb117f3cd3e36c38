// A date range in the project's time zone: the last N complete days, or from–to calendar days (the API reads
// them as local days of the project, so no conversion happens here).
import { Checkbox, DatePicker, Select, Space, Typography } from "antd";
import dayjs from "dayjs";
import { useTranslation } from "react-i18next";
import type { DateRange } from "../definition";

const PRESETS = [7, 14, 30, 60, 90, 180];

interface Props {
  value: DateRange;
  onChange: (value: DateRange) => void;
  timezone: string;
  testId?: string;
}

export function DateRangeField({ value, onChange, timezone, testId = "analysis-date-range" }: Props) {
  const { t } = useTranslation();
  const custom = value.last === undefined;
  const mode = custom ? "custom" : String(value.last);
  const presets = PRESETS.includes(value.last ?? 0) || custom ? PRESETS : [...PRESETS, value.last!].sort((a, b) => a - b);
  return (
    <Space wrap data-testid={testId}>
      <Select
        value={mode}
        style={{ width: 150 }}
        aria-label={t("analyses.builder.dateRange")}
        options={[
          ...presets.map((n) => ({ value: String(n), label: t("analyses.builder.lastDays", { count: n }) })),
          { value: "custom", label: t("analyses.builder.customRange") },
        ]}
        onChange={(m: string) => {
          if (m !== "custom") return onChange({ last: Number(m), include_current: value.include_current });
          const to = dayjs().subtract(1, "day");
          onChange({ from: to.subtract(29, "day").format("YYYY-MM-DD"), to: to.format("YYYY-MM-DD") });
        }}
      />
      {custom && (
        <DatePicker.RangePicker
          value={[value.from ? dayjs(value.from) : null, value.to ? dayjs(value.to) : null]}
          allowClear={false}
          onChange={(range) => {
            const [from, to] = range ?? [];
            if (from && to) onChange({ from: from.format("YYYY-MM-DD"), to: to.format("YYYY-MM-DD") });
          }}
          aria-label={t("analyses.builder.dateRange")}
        />
      )}
      {!custom && (
        <Checkbox
          checked={!!value.include_current}
          onChange={(e) => onChange({ ...value, include_current: e.target.checked || undefined })}
        >
          {t("analyses.builder.includeToday")}
        </Checkbox>
      )}
      <Typography.Text type="secondary">
        {timezone ? t("analyses.builder.timezone", { zone: timezone }) : t("analyses.builder.projectTimezone")}
      </Typography.Text>
    </Space>
  );
}
