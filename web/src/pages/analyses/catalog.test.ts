// The keys this area builds at run time (`analyses.kind.${kind}` …) exist in both languages for every value.
import { describe, expect, it } from "vitest";
import { catalogs } from "../../i18n";
import { ATTRIBUTION_MODELS, FILTER_OPS, KINDS, TREND_MATHS } from "./definition";
import { LIFECYCLE_STATUSES } from "./results/charts";

const dynamic: [string, readonly string[]][] = [
  ["kind", KINDS],
  ["kindHelp", KINDS],
  ["math", TREND_MATHS],
  ["op", FILTER_OPS],
  ["lifecycle", LIFECYCLE_STATUSES],
  ["attribution.model", ["all", ...ATTRIBUTION_MODELS]],
  ["interval", ["hour", "day", "week", "month"]],
  ["unit", ["minute", "hour", "day", "week"]],
  ["result.activeIntervals", ["day", "week", "month"]],
];

describe("analyses catalog", () => {
  for (const [lang, catalog] of Object.entries(catalogs())) {
    it(`holds every built key in ${lang}`, () => {
      const area = catalog.analyses as Record<string, unknown>;
      for (const [prefix, values] of dynamic) {
        const node = prefix.split(".").reduce<unknown>((n, k) => (n as Record<string, unknown>)?.[k], area);
        for (const value of values) expect((node as Record<string, unknown>)?.[value], `${prefix}.${value}`).toBeTypeOf("string");
      }
    });
  }
});
