// The volume of each registered event over the last 30 days, asked of the analysis API (the registry holds no
// counts): one trends query broken down by event name covers the active events (`$any` counts only those), and
// one trends query per 26 passive events (a series each) covers the others.

export const VOLUME_DAYS = 30;
const MAX_SERIES = 26;

export interface EventRow {
  event: string;
  active: boolean;
}

type Json = Record<string, unknown>;

/** The trends definitions that count every event of `events`. */
export function volumeDefinitions(events: EventRow[]): Json[] {
  const range = { last: VOLUME_DAYS };
  const out: Json[] = [];
  if (events.some((e) => e.active)) {
    out.push({
      kind: "trends", interval: "month", date_range: range,
      series: [{ event: "$any", math: "total" }],
      breakdown: { property: "event", limit: 500 },
    });
  }
  const passive = events.filter((e) => !e.active).map((e) => e.event);
  for (let i = 0; i < passive.length; i += MAX_SERIES) {
    const chunk = passive.slice(i, i + MAX_SERIES);
    out.push({
      kind: "trends", interval: "month", date_range: range,
      series: chunk.map((event) => ({ event, math: "total", name: event })),
    });
  }
  return out;
}

/** Event name → count, from the results of `volumeDefinitions` (in the same order). */
export function volumesFrom(definitions: Json[], results: Json[]): Map<string, number> {
  const out = new Map<string, number>();
  definitions.forEach((definition, i) => {
    const series = (results[i]?.series ?? []) as Json[];
    const byBreakdown = Boolean(definition.breakdown);
    const named = (definition.series as Json[]).map((s) => String(s.event));
    series.forEach((line, j) => {
      const total = typeof line.total === "number" ? line.total : 0;
      const event = byBreakdown ? String(line.breakdown) : named[j];
      if (event && !event.startsWith("$")) out.set(event, (out.get(event) ?? 0) + total);
    });
  });
  return out;
}
