// Numbers for people, in the console's language: thousands separators, percentages with one decimal, money with
// two decimals (the project's money property carries no currency, so none is printed).
export interface Formats {
  int: (v: number | null | undefined) => string;
  num: (v: number | null | undefined, digits?: number) => string;
  pct: (v: number | null | undefined) => string;
  money: (v: number | null | undefined) => string;
}

const DASH = "—";
const missing = (v: number | null | undefined): v is null | undefined => v === null || v === undefined || !Number.isFinite(v);

export function formats(lang: string): Formats {
  const locale = lang === "en" ? "en-US" : "zh-CN";
  const int = new Intl.NumberFormat(locale, { maximumFractionDigits: 0 });
  const pct = new Intl.NumberFormat(locale, { style: "percent", minimumFractionDigits: 1, maximumFractionDigits: 1 });
  const money = new Intl.NumberFormat(locale, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  return {
    int: (v) => (missing(v) ? DASH : int.format(v)),
    num: (v, digits = 2) =>
      missing(v) ? DASH : new Intl.NumberFormat(locale, { maximumFractionDigits: digits }).format(v),
    pct: (v) => (missing(v) ? DASH : pct.format(v)),
    money: (v) => (missing(v) ? DASH : money.format(v)),
  };
}
