// The options of each analysis kind (the fields of its definition in src/userloop/query/kinds/*), as form rows.
import { DeleteOutlined, PlusOutlined } from "@ant-design/icons";
import { Button, Checkbox, Input, InputNumber, Select, Space } from "antd";
import type { ReactNode } from "react";
import { useTranslation } from "react-i18next";
import {
  ATTRIBUTION_MODELS, PROPERTY_MATHS, TREND_MATHS, type AttributionDef, type Definition, type DistributionDef,
  type DrilldownDef, type EventRef, type FunnelDef, type IntervalDef, type LifecycleDef, type LtvDef, type PathsDef,
  type RetentionDef, type Series, type StickinessDef, type TrendsDef,
} from "../definition";
import type { Registry } from "../registry";
import { DateRangeField } from "./DateRangeField";
import { BreakdownField, Choice, DurationField, EventRefField, Row } from "./fields";
import { EventSelect, PropertySelect } from "./pickers";

interface FormProps<D extends Definition> {
  def: D;
  // A method, so a form of one kind takes the builder's handler of any definition (parameters are bivariant).
  onChange(def: D): void;
  registry: Registry;
}

const LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const INTERVALS = ["day", "week", "month"] as const;

function replace<T>(list: T[], i: number, item: T): T[] {
  return list.map((x, j) => (j === i ? item : x));
}

/** A labelled row holding one event with its filters. */
function EventRow<T extends EventRef>({ label, ...field }: { label: string } & Parameters<typeof EventRefField<T>>[0]) {
  return (
    <Row label={label}>
      <EventRefField {...field} />
    </Row>
  );
}

/** A labelled row of events (series, steps, touches): each with a remove button while there are more than `min`,
 * and a button that adds one up to `max`. */
function EventListRow<T extends EventRef>(props: {
  label: string;
  registry: Registry;
  items: T[];
  onChange: (items: T[]) => void;
  testId: (i: number) => string;
  min: number;
  max: number;
  blank: T;
  addTestId: string;
  addLabel: string;
  allowAny?: boolean;
  extra?: (item: T, i: number) => ReactNode;
}) {
  const { t } = useTranslation();
  const { items, onChange, min } = props;
  return (
    <Row label={props.label}>
      <Space orientation="vertical">
        {items.map((item, i) => {
          const remove = items.length > min && (
            <Button type="text" icon={<DeleteOutlined />} aria-label={t("common.remove")}
              onClick={() => onChange(items.filter((_, j) => j !== i))} />
          );
          return (
            <EventRefField key={i} registry={props.registry} value={item} testId={props.testId(i)} allowAny={props.allowAny}
              onChange={(next) => onChange(replace(items, i, next))}
              extra={props.extra ? <>{props.extra(item, i)}{remove}</> : remove} />
          );
        })}
        <Button type="dashed" icon={<PlusOutlined />} disabled={items.length >= props.max}
          onClick={() => onChange([...items, props.blank])} data-testid={props.addTestId}>
          {props.addLabel}
        </Button>
      </Space>
    </Row>
  );
}

function BreakdownRow({ registry, value, onChange }: Parameters<typeof BreakdownField>[0]) {
  const { t } = useTranslation();
  return (
    <Row label={t("analyses.builder.breakdown")}>
      <BreakdownField registry={registry} value={value} onChange={onChange} />
    </Row>
  );
}

/** The day / week / month choice (or the kind's own list of intervals). */
function IntervalChoice<T extends string>({ value, onChange, choices, testId }: {
  value: T;
  onChange: (interval: T) => void;
  choices: readonly T[];
  testId?: string;
}) {
  const { t } = useTranslation();
  return (
    <Choice value={value} choices={choices} prefix="analyses.interval" onChange={onChange}
      label={t("analyses.builder.interval")} testId={testId} />
  );
}

/** A labelled text box of numbers typed as "1, 7, 30", read by `parse` on every change. */
function NumbersRow<T>({ label, value, placeholder, parse, onChange }: {
  label: string;
  value: number[] | null | undefined;
  placeholder: string;
  parse: (text: string) => T;
  onChange: (parsed: T) => void;
}) {
  return (
    <Row label={label}>
      <Input style={{ width: 260 }} defaultValue={(value ?? []).join(", ")} placeholder={placeholder}
        onChange={(e) => onChange(parse(e.target.value))} aria-label={label} />
    </Row>
  );
}

function SeriesMath({ registry, value, onChange, testId }: { registry: Registry; value: Series; onChange: (s: Series) => void; testId: string }) {
  const { t } = useTranslation();
  const math = value.math ?? "total";
  return (
    <Space>
      <Select
        value={math}
        style={{ width: 170 }}
        options={TREND_MATHS.map((m) => ({ value: m, label: t(`analyses.math.${m}`) }))}
        onChange={(m: string) => onChange({ ...value, math: m, property: PROPERTY_MATHS.has(m) ? value.property : undefined })}
        aria-label={t("analyses.builder.math")}
        data-testid={`${testId}-math`}
      />
      {PROPERTY_MATHS.has(math) && (
        <PropertySelect registry={registry} property={value.property ?? ""} eventOnly numericOnly
          onChange={(property) => onChange({ ...value, property })} />
      )}
    </Space>
  );
}

function TrendsForm({ def, onChange, registry }: FormProps<TrendsDef>) {
  const { t } = useTranslation();
  const set = (patch: Partial<TrendsDef>) => onChange({ ...def, ...patch });
  return (
    <>
      <EventListRow label={t("analyses.builder.series")} registry={registry} items={def.series} allowAny
        onChange={(series) => set({ series })} testId={(i) => `trends-series-${i}`} min={1} max={26}
        blank={{ event: "", math: "total" }} addTestId="trends-add-series" addLabel={t("analyses.builder.addSeries")}
        extra={(s, i) => (
          <>
            <span aria-hidden>{LETTERS[i]}</span>
            <SeriesMath registry={registry} value={s} testId={`trends-series-${i}`}
              onChange={(next) => set({ series: replace(def.series, i, next) })} />
          </>
        )} />
      {def.series.length > 1 && (
        <Row label={t("analyses.builder.formula")}>
          <Input style={{ width: 240 }} value={def.formula ?? ""} placeholder="A/B*100"
            onChange={(e) => set({ formula: e.target.value || null })} aria-label={t("analyses.builder.formula")} />
        </Row>
      )}
      <Row label={t("analyses.builder.interval")}>
        <Space wrap>
          <IntervalChoice value={def.interval ?? "day"} choices={["hour", "day", "week", "month"] as const}
            onChange={(interval) => set({ interval })} testId="analysis-interval" />
          <Checkbox checked={!!def.compare} onChange={(e) => set({ compare: e.target.checked })} data-testid="trends-compare">
            {t("analyses.builder.compare")}
          </Checkbox>
        </Space>
      </Row>
      <BreakdownRow registry={registry} value={def.breakdown} onChange={(breakdown) => set({ breakdown })} />
    </>
  );
}

function FunnelForm({ def, onChange, registry }: FormProps<FunnelDef>) {
  const { t } = useTranslation();
  const set = (patch: Partial<FunnelDef>) => onChange({ ...def, ...patch });
  return (
    <>
      <EventListRow label={t("analyses.builder.steps")} registry={registry} items={def.steps}
        onChange={(steps) => set({ steps })} testId={(i) => `funnel-step-${i}`} min={2} max={40}
        blank={{ event: "" }} addTestId="funnel-add-step" addLabel={t("analyses.builder.addStep")}
        extra={(s, i) => (
          <Checkbox checked={!!s.optional} disabled={i === 0}
            onChange={(e) => set({ steps: replace(def.steps, i, { ...s, optional: e.target.checked || undefined }) })}>
            {t("analyses.builder.optional")}
          </Checkbox>
        )} />
      <Row label={t("analyses.builder.window")}>
        <Space wrap>
          <DurationField value={def.window ?? { value: 14, unit: "day" }} onChange={(window) => set({ window })} testId="funnel-window" />
          <Choice value={def.order ?? "sequential"} choices={["sequential", "strict", "any"] as const} prefix="analyses.funnel.order"
            onChange={(order) => set({ order })} label={t("analyses.builder.order")} testId="funnel-order" />
        </Space>
      </Row>
      <BreakdownRow registry={registry} value={def.breakdown} onChange={(breakdown) => set({ breakdown })} />
    </>
  );
}

function RetentionForm({ def, onChange, registry }: FormProps<RetentionDef>) {
  const { t } = useTranslation();
  const set = (patch: Partial<RetentionDef>) => onChange({ ...def, ...patch });
  return (
    <>
      <EventRow label={t("analyses.builder.startEvent")} registry={registry} value={def.start} testId="retention-start" allowAny
        onChange={(start) => set({ start })}
        extra={<Choice value={def.start_type ?? "first_time"} choices={["first_time", "recurring"] as const}
          prefix="analyses.retention.startType" onChange={(start_type) => set({ start_type })} label={t("analyses.builder.startType")} />} />
      <EventRow label={t("analyses.builder.returnEvent")} registry={registry} value={def.return_event ?? { event: "" }}
        testId="retention-return" allowAny allowClear onChange={(r) => set({ return_event: r.event ? r : null })} />
      <Row label={t("analyses.builder.interval")}>
        <Space wrap>
          <IntervalChoice value={def.interval ?? "week"} choices={INTERVALS} onChange={(interval) => set({ interval })}
            testId="analysis-interval" />
          <InputNumber style={{ width: 150 }} min={1} max={60} value={def.periods ?? 8} onChange={(periods) => periods && set({ periods })}
            suffix={t("analyses.builder.periods")} aria-label={t("analyses.builder.periods")} />
          <Choice value={def.mode ?? "on"} choices={["on", "on_or_after"] as const} prefix="analyses.retention.mode"
            onChange={(mode) => set({ mode })} label={t("analyses.builder.mode")} width={180} />
        </Space>
      </Row>
      <BreakdownRow registry={registry} value={def.breakdown} onChange={(breakdown) => set({ breakdown })} />
    </>
  );
}

function PathsForm({ def, onChange, registry }: FormProps<PathsDef>) {
  const { t } = useTranslation();
  const set = (patch: Partial<PathsDef>) => onChange({ ...def, ...patch });
  return (
    <>
      <EventRow label={t("analyses.builder.pathStart")} registry={registry} value={def.start ?? { event: "" }} testId="paths-start"
        allowClear onChange={(r) => set({ start: r.event ? r : null, end: r.event ? null : def.end })} />
      <EventRow label={t("analyses.builder.pathEnd")} registry={registry} value={def.end ?? { event: "" }} testId="paths-end"
        allowClear onChange={(r) => set({ end: r.event ? r : null, start: r.event ? null : def.start })} />
      <Row label={t("analyses.builder.pathSteps")}>
        <Space wrap>
          <InputNumber min={2} max={10} value={def.steps ?? 5} onChange={(steps) => steps && set({ steps })}
            aria-label={t("analyses.builder.pathSteps")} />
          <Checkbox checked={def.collapse_repeats ?? true} onChange={(e) => set({ collapse_repeats: e.target.checked })}>
            {t("analyses.builder.collapseRepeats")}
          </Checkbox>
          <InputNumber style={{ width: 170 }} min={1} max={1440} value={def.session_gap_minutes ?? 30}
            onChange={(v) => v && set({ session_gap_minutes: v })}
            suffix={t("analyses.builder.sessionGap")} aria-label={t("analyses.builder.sessionGap")} />
        </Space>
      </Row>
      <Row label={t("analyses.builder.excludeEvents")}>
        <Select mode="multiple" style={{ minWidth: 300 }} value={def.exclude ?? []}
          options={registry.events.map((e) => ({ value: e.event, label: registry.eventLabel(e.event) }))}
          onChange={(exclude: string[]) => set({ exclude })} aria-label={t("analyses.builder.excludeEvents")} />
      </Row>
    </>
  );
}

function EventIntervalForm({ def, onChange, registry }: FormProps<LifecycleDef | StickinessDef>) {
  const { t } = useTranslation();
  return (
    <>
      <EventRow label={t("analyses.builder.event")} registry={registry} value={def.event} testId={`${def.kind}-event`} allowAny
        onChange={(event) => onChange({ ...def, event })} />
      <Row label={t("analyses.builder.interval")}>
        <IntervalChoice value={def.interval ?? "day"} choices={INTERVALS} onChange={(interval) => onChange({ ...def, interval })}
          testId="analysis-interval" />
      </Row>
    </>
  );
}

/** Bucket edges typed as "0, 1, 5, 10". */
export function parseBins(text: string): number[] | null {
  const values = text.split(/[,\s，]+/).filter(Boolean).map(Number);
  return values.length && values.every((v) => !Number.isNaN(v)) ? values : null;
}

function DistributionForm({ def, onChange, registry }: FormProps<DistributionDef>) {
  const { t } = useTranslation();
  const set = (patch: Partial<DistributionDef>) => onChange({ ...def, ...patch });
  return (
    <>
      <EventRow label={t("analyses.builder.event")} registry={registry} value={def.event} testId="distribution-event"
        onChange={(event) => set({ event })} />
      <Row label={t("analyses.builder.measure")}>
        <Space wrap>
          <Choice value={def.measure ?? "count"} choices={["count", "sum"] as const} prefix="analyses.distribution.measure"
            onChange={(measure) => set({ measure, property: measure === "sum" ? def.property : null })} label={t("analyses.builder.measure")} />
          {def.measure === "sum" && (
            <PropertySelect registry={registry} property={def.property ?? ""} eventOnly numericOnly
              onChange={(property) => set({ property })} />
          )}
          <Checkbox checked={!!def.include_zero} onChange={(e) => set({ include_zero: e.target.checked })}>
            {t("analyses.builder.includeZero")}
          </Checkbox>
        </Space>
      </Row>
      <NumbersRow label={t("analyses.builder.bins")} value={def.bins} placeholder="1, 2, 5, 10" parse={parseBins}
        onChange={(bins) => set({ bins })} />
    </>
  );
}

function IntervalForm({ def, onChange, registry }: FormProps<IntervalDef>) {
  const { t } = useTranslation();
  const set = (patch: Partial<IntervalDef>) => onChange({ ...def, ...patch });
  return (
    <>
      <EventRow label={t("analyses.builder.fromEvent")} registry={registry} value={def.from_event} testId="interval-from"
        onChange={(from_event) => set({ from_event })} />
      <EventRow label={t("analyses.builder.toEvent")} registry={registry} value={def.to_event} testId="interval-to"
        onChange={(to_event) => set({ to_event })} />
      <Row label={t("analyses.builder.maxGap")}>
        <Space wrap>
          <DurationField value={def.max_gap ?? { value: 7, unit: "day" }} onChange={(max_gap) => set({ max_gap })} testId="interval-max-gap" />
          <Choice value={def.per ?? "pair"} choices={["pair", "person"] as const} prefix="analyses.intervalPer"
            onChange={(per) => set({ per })} label={t("analyses.builder.per")} />
        </Space>
      </Row>
    </>
  );
}

function AttributionForm({ def, onChange, registry }: FormProps<AttributionDef>) {
  const { t } = useTranslation();
  const set = (patch: Partial<AttributionDef>) => onChange({ ...def, ...patch });
  return (
    <>
      <EventRow label={t("analyses.builder.target")} registry={registry} value={def.target} testId="attribution-target"
        onChange={(target) => set({ target })} />
      <EventListRow label={t("analyses.builder.touches")} registry={registry} items={def.touches}
        onChange={(touches) => set({ touches })} testId={(i) => `attribution-touch-${i}`} min={1} max={20}
        blank={{ event: "" }} addTestId="attribution-add-touch" addLabel={t("analyses.builder.addTouch")} />
      <Row label={t("analyses.builder.model")}>
        <Space wrap>
          <Choice value={def.model ?? "last"} choices={["all", ...ATTRIBUTION_MODELS] as const} prefix="analyses.attribution.model"
            onChange={(model) => set({ model })} label={t("analyses.builder.model")} width={180} />
          <DurationField value={def.lookback ?? { value: 7, unit: "day" }} onChange={(lookback) => set({ lookback })} testId="attribution-lookback" />
          <PropertySelect registry={registry} property={def.value_property ?? ""} eventOnly numericOnly allowClear
            onChange={(p) => set({ value_property: p || null })} />
        </Space>
      </Row>
    </>
  );
}

export function parseDays(text: string): number[] {
  return text.split(/[,\s，]+/).filter(Boolean).map(Number).filter((n) => Number.isInteger(n) && n >= 0).slice(0, 30);
}

function LtvForm({ def, onChange, registry }: FormProps<LtvDef>) {
  const { t } = useTranslation();
  const set = (patch: Partial<LtvDef>) => onChange({ ...def, ...patch });
  return (
    <>
      <EventRow label={t("analyses.builder.cohortEvent")} registry={registry} value={def.cohort_event ?? { event: "" }}
        testId="ltv-cohort" allowClear onChange={(r: EventRef) => set({ cohort_event: r.event ? r : undefined })} />
      <EventRow label={t("analyses.builder.valueEvent")} registry={registry} value={def.value_event} testId="ltv-value"
        onChange={(value_event) => set({ value_event })} />
      <Row label={t("analyses.builder.measure")}>
        <Space wrap>
          <Choice value={def.math ?? "sum"} choices={["sum", "count"] as const} prefix="analyses.distribution.measure"
            onChange={(math) => set({ math })} label={t("analyses.builder.measure")} />
          {def.math !== "count" && (
            <PropertySelect registry={registry} property={def.value_property ?? ""} eventOnly numericOnly allowClear
              onChange={(p) => set({ value_property: p || null })} />
          )}
          <IntervalChoice value={def.cohort_interval ?? "day"} choices={INTERVALS}
            onChange={(cohort_interval) => set({ cohort_interval })} />
        </Space>
      </Row>
      <NumbersRow label={t("analyses.builder.days")} value={def.days} placeholder="1, 7, 30" parse={parseDays}
        onChange={(days) => set({ days })} />
    </>
  );
}

function DrilldownForm({ def, onChange, registry }: FormProps<DrilldownDef>) {
  const { t } = useTranslation();
  const set = (patch: Partial<DrilldownDef>) => onChange({ ...def, ...patch });
  return (
    <>
      <Row label={t("analyses.builder.metric")}>
        <Space wrap>
          <EventSelect registry={registry} value={def.series.event} testId="drilldown-event"
            onChange={(event) => set({ series: { ...def.series, event } })} />
          <Choice value={(def.series.math ?? "total") as "total" | "users" | "sum"} choices={["total", "users", "sum"] as const}
            prefix="analyses.math" onChange={(math) => set({ series: { ...def.series, math } })} label={t("analyses.builder.math")} />
          {def.series.math === "sum" && (
            <PropertySelect registry={registry} property={def.series.property ?? ""} eventOnly numericOnly
              onChange={(property) => set({ series: { ...def.series, property } })} />
          )}
        </Space>
      </Row>
      <Row label={t("analyses.builder.currentPeriod")}>
        <DateRangeField value={def.current} onChange={(current) => set({ current })} timezone={registry.timezone} testId="drilldown-current" />
      </Row>
      <Row label={t("analyses.builder.dimensions")}>
        <Select mode="multiple" style={{ minWidth: 320 }} data-testid="drilldown-dimensions"
          value={def.dimensions.map((d) => `${d.source ?? "event"}:${d.property}`)}
          options={registry.properties.filter((p) => p.table !== "items").map((p) => ({
            value: `${p.table === "users" ? "user" : "event"}:${p.name}`,
            label: `${registry.propertyLabel(p.name, p.table)} (${t(p.table === "users" ? "analyses.builder.userProperties" : "analyses.builder.eventProperties")})`,
          }))}
          onChange={(values: string[]) => set({
            dimensions: values.slice(0, 10).map((v) => {
              const [source, ...rest] = v.split(":");
              return { property: rest.join(":"), source: source as "event" | "user" };
            }),
          })}
          aria-label={t("analyses.builder.dimensions")} />
      </Row>
    </>
  );
}

/** The kind's own rows of the builder. */
export function KindForm({ def, onChange, registry }: FormProps<Definition>) {
  const props = { onChange, registry };
  switch (def.kind) {
    case "trends": return <TrendsForm def={def} {...props} />;
    case "funnel": return <FunnelForm def={def} {...props} />;
    case "retention": return <RetentionForm def={def} {...props} />;
    case "paths": return <PathsForm def={def} {...props} />;
    case "lifecycle":
    case "stickiness": return <EventIntervalForm def={def} {...props} />;
    case "distribution": return <DistributionForm def={def} {...props} />;
    case "interval": return <IntervalForm def={def} {...props} />;
    case "attribution": return <AttributionForm def={def} {...props} />;
    case "ltv": return <LtvForm def={def} {...props} />;
    case "drilldown": return <DrilldownForm def={def} {...props} />;
  }
}
