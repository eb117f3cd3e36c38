// Events and properties picked from the project's registry, shown by their display names (the name beside when
// they differ) and searchable by either.
import { Select, Typography } from "antd";
import type { DefaultOptionType } from "antd/es/select";
import { useTranslation } from "react-i18next";
import type { Source } from "../definition";
import type { Registry } from "../registry";

function optionLabel(display: string, name: string, extra?: string) {
  return (
    <span>
      {display}
      {display !== name && <Typography.Text type="secondary"> {name}</Typography.Text>}
      {extra && <Typography.Text type="secondary"> · {extra}</Typography.Text>}
    </span>
  );
}

interface EventSelectProps {
  registry: Registry;
  value: string;
  onChange: (event: string) => void;
  /** Offer "any event" ($any). */
  allowAny?: boolean;
  allowClear?: boolean;
  testId?: string;
  ariaLabel?: string;
  width?: number;
}

export function EventSelect({ registry, value, onChange, allowAny, allowClear, testId, ariaLabel, width = 220 }: EventSelectProps) {
  const { t } = useTranslation();
  const options = registry.events.map((e) => ({
    value: e.event,
    search: `${e.event} ${registry.eventLabel(e.event)}`.toLowerCase(),
    label: optionLabel(registry.eventLabel(e.event), e.event, e.active ? undefined : t("analyses.builder.passive")),
  }));
  if (allowAny) {
    options.unshift({ value: "$any", search: `$any ${t("analyses.builder.anyEvent")}`.toLowerCase(), label: <span>{t("analyses.builder.anyEvent")}</span> });
  }
  return (
    <Select
      showSearch={{ filterOption: (input, option) => !!option?.search.includes(input.toLowerCase()) }}
      value={value || undefined}
      placeholder={t("analyses.builder.pickEvent")}
      options={options}
      onChange={(v: string | undefined) => onChange(v ?? "")}
      allowClear={allowClear}
      style={{ width }}
      data-testid={testId}
      aria-label={ariaLabel ?? t("analyses.builder.event")}
    />
  );
}

interface PropertySelectProps {
  registry: Registry;
  property: string;
  source?: Source;
  onChange: (property: string, source: Source) => void;
  /** Only event properties (a numeric one for sums, for instance). */
  eventOnly?: boolean;
  numericOnly?: boolean;
  allowClear?: boolean;
  testId?: string;
  width?: number;
}

/** A property of the events or of the person's profile; the value carries which. */
export function PropertySelect(props: PropertySelectProps) {
  const { registry, property, source = "event", onChange, eventOnly, numericOnly, allowClear, testId, width = 200 } = props;
  const { t } = useTranslation();
  const group = (table: "events" | "users", src: Source) => ({
    label: t(src === "event" ? "analyses.builder.eventProperties" : "analyses.builder.userProperties"),
    title: src,
    options: registry.properties
      .filter((p) => p.table === table && (!numericOnly || p.type === "NUMBER"))
      .map((p) => ({
        value: `${src}:${p.name}`,
        search: `${p.name} ${registry.propertyLabel(p.name, table)}`.toLowerCase(),
        label: optionLabel(registry.propertyLabel(p.name, table), p.name),
      })),
  });
  const options: DefaultOptionType[] = eventOnly
    ? group("events", "event").options
    : [group("events", "event"), group("users", "user")];
  return (
    <Select<string | undefined, DefaultOptionType>
      showSearch={{
        filterOption: (input, option) => !!(option as { search?: string } | undefined)?.search?.includes(input.toLowerCase()),
      }}
      value={property ? `${source}:${property}` : undefined}
      placeholder={t("analyses.builder.pickProperty")}
      options={options}
      allowClear={allowClear}
      onChange={(v: string | undefined) => {
        if (!v) return onChange("", "event");
        const [src, ...rest] = v.split(":");
        onChange(rest.join(":"), src as Source);
      }}
      style={{ width }}
      data-testid={testId}
      aria-label={t("analyses.builder.property")}
    />
  );
}

/** The type of a property in the registry (NUMBER, STRING, BOOL, …), or "" when unknown. */
export function propertyType(registry: Registry, property: string, source: Source = "event"): string {
  const table = source === "user" ? "users" : "events";
  return registry.properties.find((p) => p.table === table && p.name === property)?.type ?? "";
}
