// Numbers as people read them, in the console's language: thousands separators, percentages with one decimal,
// money with two, durations in the largest fitting unit. Pure functions (the chart and table builders use them).

export interface Formatters {
  number: (value: number | null | undefined) => string;
  percent: (value: number | null | undefined) => string;
  money: (value: number | null | undefined) => string;
  duration: (seconds: number | null | undefined) => string;
}

const DASH = "–";

const UNITS: [string, number][] = [
  ["day", 86400],
  ["hour", 3600],
  ["minute", 60],
  ["second", 1],
];

export function formatters(locale: string): Formatters {
  const integer = new Intl.NumberFormat(locale, { maximumFractionDigits: 0 });
  const decimal = new Intl.NumberFormat(locale, { maximumFractionDigits: 2 });
  const pct = new Intl.NumberFormat(locale, { style: "percent", minimumFractionDigits: 1, maximumFractionDigits: 1 });
  const money = new Intl.NumberFormat(locale, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  const units = new Map(
    UNITS.map(([unit]) => [
      unit,
      new Intl.NumberFormat(locale, { style: "unit", unit, unitDisplay: "short", maximumFractionDigits: 1 }),
    ]),
  );
  const missing = (v: number | null | undefined): v is null | undefined =>
    v === null || v === undefined || Number.isNaN(v);
  return {
    number: (v) => (missing(v) ? DASH : Number.isInteger(v) || Math.abs(v) >= 1000 ? integer.format(v) : decimal.format(v)),
    percent: (v) => (missing(v) ? DASH : pct.format(v)),
    money: (v) => (missing(v) ? DASH : money.format(v)),
    duration: (s) => {
      if (missing(s)) return DASH;
      const [unit, size] = UNITS.find(([, size]) => Math.abs(s) >= size) ?? UNITS[UNITS.length - 1];
      return units.get(unit)!.format(s / size);
    },
  };
}
