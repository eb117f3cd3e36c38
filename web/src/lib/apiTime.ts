// A time the API sends (ISO 8601, already in the project's zone or UTC as the API documents it) as people read
// it: "2026-12-07 09:06:18", without the microseconds or the "T"; the time zone is left as the API gave it.

export function apiTime(iso: string | null | undefined): string {
  if (!iso) return "—";
  const match = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2})?)/.exec(iso);
  return match ? `${match[1]} ${match[2]}` : iso;
}
