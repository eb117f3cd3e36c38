// One table builder per analysis kind: the same numbers as the chart, formatted for people, with the "people
// behind this number" targets of each row where the API can list them (segments.from_analysis).
import type { Kind, PeopleTarget } from "../definition";
import { LIFECYCLE_STATUSES } from "./charts";
import { breakdownLabel, lineName, propertyName, type ResultText } from "./text";
import type {
  AttributionResult, DistributionResult, DrilldownResult, FunnelResult, IntervalResult, LifecycleResult, LtvResult,
  PathsResult, RetentionResult, StickinessResult, TrendsResult,
} from "./types";

export interface Column {
  key: string;
  title: string;
  numeric: boolean;
}
export interface PeopleAction {
  label: string;
  target: PeopleTarget;
}
export interface Row {
  key: string;
  cells: Record<string, string>;
  people?: PeopleAction[];
}
export interface ResultTable {
  columns: Column[];
  rows: Row[];
}

const col = (key: string, title: string, numeric = true): Column => ({ key, title, numeric });

export function trendsTable(r: TrendsResult, text: ResultText): ResultTable {
  const multi = r.series.some((s) => s.breakdown !== null);
  const columns = [col("series", text.t("analyses.result.series"), false), ...r.buckets.map((b) => col(b, b))];
  columns.push(col("total", text.t("analyses.result.total")));
  const row = (line: TrendsResult["series"][number], buckets: string[], suffix: string, key: string): Row => {
    const cells: Record<string, string> = { series: lineName(line, text, multi) + suffix };
    line.data.forEach((v, i) => (cells[r.buckets[i] ?? buckets[i]] = text.fmt.number(v)));
    cells.total = text.fmt.number(line.total);
    return { key, cells };
  };
  const rows = r.series.map((s, i) => row(s, r.buckets, "", `c${i}`));
  const suffix = ` (${text.t("analyses.result.previousPeriod")})`;
  (r.compare ?? []).forEach((s, i) => rows.push(row(s, r.compare_buckets ?? [], suffix, `p${i}`)));
  return { columns, rows };
}

export function funnelTable(r: FunnelResult, text: ResultText): ResultTable {
  const columns = [
    col("step", text.t("analyses.result.step"), false),
    col("count", text.t("analyses.result.people")),
    col("fromFirst", text.t("analyses.result.conversionFromFirst")),
    col("fromPrevious", text.t("analyses.result.conversionFromPrevious")),
    col("dropped", text.t("analyses.result.dropped")),
    col("dropOff", text.t("analyses.result.dropOffRate")),
    col("time", text.t("analyses.result.medianTime")),
  ];
  const series = r.breakdowns && r.breakdowns.length ? r.breakdowns : [{ breakdown: null, steps: r.steps }];
  const multi = series.length > 1 || series[0].breakdown !== null;
  const rows = series.flatMap((s) =>
    s.steps.map((step) => {
      const name = `${step.step}. ${text.event(step.label)}`;
      const people: PeopleAction[] = [
        {
          label: text.t("analyses.toSegment.converted"),
          target: { kind: "funnel", step: step.step, status: "converted", breakdown: multi ? s.breakdown : undefined },
        },
      ];
      if (step.step > 1 && step.dropped > 0) {
        people.push({
          label: text.t("analyses.toSegment.dropped"),
          target: { kind: "funnel", step: step.step, status: "dropped", breakdown: multi ? s.breakdown : undefined },
        });
      }
      return {
        key: `${s.breakdown ?? ""}#${step.step}`,
        cells: {
          step: multi ? `${breakdownLabel(s.breakdown, text)} · ${name}` : name,
          count: text.fmt.number(step.count),
          fromFirst: text.fmt.percent(step.conversion_from_first),
          fromPrevious: text.fmt.percent(step.conversion_from_previous),
          dropped: text.fmt.number(step.dropped),
          dropOff: text.fmt.percent(step.drop_off_rate),
          time: text.fmt.duration(step.median_time_from_previous),
        },
        people,
      };
    }),
  );
  return { columns, rows };
}

export function retentionTable(r: RetentionResult, text: ResultText): ResultTable {
  const periods = Array.from({ length: r.periods + 1 }, (_, i) => i);
  const multi = r.cohorts.some((c) => c.breakdown !== null);
  const columns = [
    col("cohort", text.t("analyses.result.cohort"), false),
    col("size", text.t("analyses.result.people")),
    ...periods.map((p) => col(`p${p}`, text.t("analyses.result.periodN", { n: p }))),
  ];
  const rows = r.cohorts.map((c) => {
    const cells: Record<string, string> = {
      cohort: multi ? `${c.cohort} · ${breakdownLabel(c.breakdown, text)}` : c.cohort,
      size: text.fmt.number(c.size),
    };
    periods.forEach((p) => {
      const rate = c.rates[p];
      cells[`p${p}`] = rate === null || rate === undefined ? "" : `${text.fmt.percent(rate)} (${text.fmt.number(c.counts[p])})`;
    });
    const breakdown = multi ? c.breakdown : undefined;
    const people: PeopleAction[] = [
      { label: text.t("analyses.toSegment.cohort"), target: { kind: "retention", cohort: c.cohort, period: null, breakdown } },
      ...periods
        .filter((p) => p > 0 && (c.counts[p] ?? 0) > 0)
        .map((p) => ({
          label: text.t("analyses.toSegment.returnedIn", { n: p }),
          target: { kind: "retention" as const, cohort: c.cohort, period: p, breakdown },
        })),
    ];
    return { key: `${c.cohort}#${c.breakdown ?? ""}`, cells, people };
  });
  return { columns, rows };
}

export function pathsTable(r: PathsResult, text: ResultText): ResultTable {
  const name = (e: string) => (e === "$end" ? text.t("analyses.result.pathEnd") : text.event(e));
  return {
    columns: [
      col("path", text.t("analyses.result.path"), false),
      col("users", text.t("analyses.result.people")),
      col("count", text.t("analyses.result.times")),
    ],
    rows: r.paths.map((p, i) => ({
      key: String(i),
      cells: { path: p.events.map(name).join(" → "), users: text.fmt.number(p.users), count: text.fmt.number(p.count) },
    })),
  };
}

export function lifecycleTable(r: LifecycleResult, text: ResultText): ResultTable {
  const columns = [
    col("bucket", text.t("analyses.result.period"), false),
    ...LIFECYCLE_STATUSES.map((s) => col(s, text.t(`analyses.lifecycle.${s}`))),
  ];
  const rows = r.buckets.map((b) => ({
    key: b.bucket,
    cells: Object.fromEntries([
      ["bucket", b.bucket],
      ...LIFECYCLE_STATUSES.map((s) => [s, text.fmt.number(b[s])]),
    ]) as Record<string, string>,
    people: LIFECYCLE_STATUSES.filter((s) => (b[s] ?? 0) !== 0).map((status) => ({
      label: text.t(`analyses.lifecycle.${status}`),
      target: { kind: "lifecycle" as const, bucket: b.bucket, status },
    })),
  }));
  return { columns, rows };
}

export function stickinessTable(r: StickinessResult, text: ResultText): ResultTable {
  return {
    columns: [
      col("intervals", text.t(`analyses.result.activeIntervals.${r.interval}`), false),
      col("people", text.t("analyses.result.people")),
      col("share", text.t("analyses.result.share")),
    ],
    rows: r.rows.map((row) => ({
      key: String(row.intervals),
      cells: { intervals: String(row.intervals), people: text.fmt.number(row.people), share: text.fmt.percent(row.share) },
      people: row.people > 0
        ? [{ label: text.t("analyses.toSegment.these"), target: { kind: "stickiness", intervals: row.intervals } }]
        : [],
    })),
  };
}

function shareTable(
  labelTitle: string, countTitle: string, items: { label: string; count: number; share: number }[], text: ResultText,
): ResultTable {
  return {
    columns: [col("label", labelTitle, false), col("count", countTitle), col("share", text.t("analyses.result.share"))],
    rows: items.map((b, i) => ({
      key: String(i),
      cells: { label: b.label, count: text.fmt.number(b.count), share: text.fmt.percent(b.share) },
    })),
  };
}

export function distributionTable(r: DistributionResult, text: ResultText): ResultTable {
  const title = text.t(r.measure === "sum" ? "analyses.result.sumPerPerson" : "analyses.result.timesPerPerson");
  const items = r.buckets.map((b) => ({ label: b.label, count: b.people, share: b.share }));
  return shareTable(title, text.t("analyses.result.people"), items, text);
}

export function intervalTable(r: IntervalResult, text: ResultText): ResultTable {
  const items = r.histogram.map((b) => ({ label: b.label, count: b.count, share: b.share }));
  const countTitle = text.t(r.per === "pair" ? "analyses.result.pairs" : "analyses.result.people");
  return shareTable(text.t("analyses.result.interval"), countTitle, items, text);
}

export function attributionTable(r: AttributionResult, text: ResultText): ResultTable {
  const columns = [
    col("channel", text.t("analyses.result.channel"), false),
    col("touched", text.t("analyses.result.touchedConversions")),
    ...r.models.map((m) => col(m, text.t(`analyses.attribution.model.${m}`))),
  ];
  const rows = r.channels.map((c) => ({
    key: c.channel,
    cells: {
      channel: c.channel === "$none" ? text.t("analyses.result.noTouch") : text.event(c.channel),
      touched: text.fmt.number(c.touched_conversions),
      ...Object.fromEntries(
        r.models.map((m) => [m, `${text.fmt.number(c.credit[m]?.conversions)} (${text.fmt.percent(c.credit[m]?.share)})`]),
      ),
    },
  }));
  return { columns, rows };
}

export function ltvTable(r: LtvResult, text: ResultText): ResultTable {
  const columns = [
    col("cohort", text.t("analyses.result.cohort"), false),
    col("size", text.t("analyses.result.people")),
    ...r.days.map((d, i) => col(`d${i}`, text.t("analyses.result.dayN", { n: d }))),
  ];
  const row = (c: LtvResult["all"], label: string): Row => ({
    key: c.cohort,
    cells: {
      cohort: label,
      size: text.fmt.number(c.size),
      ...Object.fromEntries(c.values.map((v, i) => [`d${i}`, text.fmt.money(v)])),
    },
  });
  return { columns, rows: [row(r.all, text.t("analyses.result.allCohorts")), ...r.cohorts.map((c) => row(c, c.cohort))] };
}

export function drilldownTable(r: DrilldownResult, text: ResultText): ResultTable {
  const columns = [
    col("dimension", text.t("analyses.result.dimension"), false),
    col("value", text.t("analyses.result.value"), false),
    col("baseline", text.t("analyses.result.baseline")),
    col("current", text.t("analyses.result.current")),
    col("change", text.t("analyses.result.change")),
    col("contribution", text.t("analyses.result.contribution")),
    col("significant", text.t("analyses.result.significant"), false),
  ];
  const rows = r.dimensions.flatMap((d) =>
    d.values.map((v) => ({
      key: `${d.property}#${v.value ?? ""}`,
      cells: {
        dimension: propertyName(d.property, d.source, text),
        value: breakdownLabel(v.value, text),
        baseline: text.fmt.number(v.baseline),
        current: text.fmt.number(v.current),
        change: `${text.fmt.number(v.change)} (${text.fmt.percent(v.change_pct)})`,
        contribution: text.fmt.percent(v.contribution),
        significant: v.significant ? text.t("common.yes") : text.t("common.no"),
      },
    })),
  );
  return { columns, rows };
}

/** The table of a result of `kind`. */
export function tableOf(kind: Kind, result: unknown, text: ResultText): ResultTable {
  switch (kind) {
    case "trends":
      return trendsTable(result as TrendsResult, text);
    case "funnel":
      return funnelTable(result as FunnelResult, text);
    case "retention":
      return retentionTable(result as RetentionResult, text);
    case "paths":
      return pathsTable(result as PathsResult, text);
    case "lifecycle":
      return lifecycleTable(result as LifecycleResult, text);
    case "stickiness":
      return stickinessTable(result as StickinessResult, text);
    case "distribution":
      return distributionTable(result as DistributionResult, text);
    case "interval":
      return intervalTable(result as IntervalResult, text);
    case "attribution":
      return attributionTable(result as AttributionResult, text);
    case "ltv":
      return ltvTable(result as LtvResult, text);
    case "drilldown":
      return drilldownTable(result as DrilldownResult, text);
  }
}
