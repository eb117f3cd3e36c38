// How people-centred numbers and values read in the users and segments areas: counts with thousands separators,
// shares as percentages with one decimal, p-values compactly, times as the API gave them (already in the
// project's time zone), bilingual texts in the console's language.

export type Lang = "zh-CN" | "en";

export const langOf = (language: string): Lang => (language.startsWith("en") ? "en" : "zh-CN");

const EMPTY = "—";

export function formatCount(n: number | null | undefined, lang: Lang): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return EMPTY;
  return new Intl.NumberFormat(lang, { maximumFractionDigits: 0 }).format(n);
}

/** A number read by people: thousands separators, at most `digits` decimals. */
export function formatNumber(n: number | null | undefined, lang: Lang, digits = 2): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return EMPTY;
  return new Intl.NumberFormat(lang, { maximumFractionDigits: digits }).format(n);
}

/** A share (0…1) as a percentage with one decimal: 0.05767 → "5.8%". */
export function formatShare(x: number | null | undefined, lang: Lang): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return EMPTY;
  return new Intl.NumberFormat(lang, { style: "percent", minimumFractionDigits: 1, maximumFractionDigits: 1 }).format(x);
}

/** A p-value: "< 0.0001" when tiny, else two significant digits. */
export function formatP(p: number | null | undefined): string {
  if (p === null || p === undefined || !Number.isFinite(p)) return EMPTY;
  if (p < 0.0001) return "< 0.0001";
  return String(Number(p.toPrecision(2)));
}

/** A time the API sent in the project's zone ("2026-10-25T09:09:38.183000+08:00") as "2026-10-25 09:09:38". */
export function formatTime(s: string | null | undefined): string {
  if (!s) return EMPTY;
  const m = /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2})?))?/.exec(s);
  if (!m) return s;
  return m[2] ? `${m[1]} ${m[2]}` : m[1];
}

/** Any value of a property, tag or model output as text (React escapes it when rendered). */
export function formatValue(v: unknown, lang: Lang): string {
  if (v === null || v === undefined || v === "") return EMPTY;
  if (typeof v === "number") return formatNumber(v, lang, 4);
  if (typeof v === "boolean") return v ? "✓" : "✗";
  if (Array.isArray(v)) return v.map((x) => formatValue(x, lang)).join(", ");
  if (typeof v === "object") return JSON.stringify(v);
  const text = String(v);
  return /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/.test(text) ? formatTime(text) : text;
}

export function bilingual(text: { zh: string; en: string } | null | undefined, lang: Lang): string {
  if (!text) return "";
  return lang === "en" ? text.en : text.zh;
}

/** A tag's (or anything's) title in the console's language, falling back to its name. */
export function titleOf(item: { name: string; title_zh?: string; title_en?: string }, lang: Lang): string {
  const title = lang === "en" ? item.title_en : item.title_zh;
  return title || item.name;
}
