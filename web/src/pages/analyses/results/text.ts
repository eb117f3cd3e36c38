// What the chart and table builders need to write for people: translations, event display names, number formats.
import type { Formatters } from "../format";

export type Translate = (key: string, values?: Record<string, unknown>) => string;

export interface ResultText {
  t: Translate;
  /** An event's display name in the console's language (its name when it has none). */
  event: (name: string) => string;
  /** A property's display name (`source` "user" for a profile property), else its name; optional (other areas
   * draw these charts too). */
  property?: (name: string, source?: string) => string;
  fmt: Formatters;
}

/** A property's name as shown: its display name when the caller knows it. */
export function propertyName(name: string, source: string, text: ResultText): string {
  return text.property ? text.property(name, source) : name;
}

/** A breakdown value as shown: the API's `$other` / `$none` in words, any other value as it is. */
export function breakdownLabel(value: string | null | undefined, text: ResultText): string {
  if (value === "$other") return text.t("analyses.result.other");
  if (value === "$none" || value === null || value === undefined) return text.t("analyses.result.none");
  return value;
}

/** A trends line's name: its label (an event's display name unless the series was named), with its breakdown. */
export function lineName(line: { label: string; breakdown: string | null }, text: ResultText, multi: boolean): string {
  const base = text.event(line.label);
  return multi ? `${base} · ${breakdownLabel(line.breakdown, text)}` : base;
}
