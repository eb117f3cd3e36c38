// What the import route accepts as a file name: letters, digits, '_', '-', '.', not starting with '.', at most
// 200 characters; the suffix (.csv, .jsonl, .parquet, .gz) tells the format, so it is kept.

const ALLOWED = /[^A-Za-z0-9_.-]/g;

/** A name the route accepts for `name` (a person's file may be called "订单 2026.csv"). */
export function safeFilename(name: string): string {
  const dot = name.indexOf(".", 1);
  const suffix = dot > 0 ? name.slice(dot).replace(ALLOWED, "").toLowerCase() : "";
  const stem = (dot > 0 ? name.slice(0, dot) : name).replace(ALLOWED, "_").replace(/^[.]+/, "");
  const base = (stem || "upload").slice(0, 200 - suffix.length);
  return /^[A-Za-z0-9_-]/.test(base) ? base + suffix : ("f" + base).slice(0, 200 - suffix.length) + suffix;
}

/** The mapping text as the route takes it ("{}" when empty), or null when it is not a JSON object. */
export function mappingParam(text: string): string | null {
  if (!text.trim()) return "{}";
  try {
    const value: unknown = JSON.parse(text);
    return value && typeof value === "object" && !Array.isArray(value) ? JSON.stringify(value) : null;
  } catch {
    return null;
  }
}
