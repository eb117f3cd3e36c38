// Instants as people read them, in the project's time zone: the API writes UTC instants, with or without an
// offset ("2026-12-07T09:04:59.77" is UTC).
const HAS_ZONE = /(Z|[+-]\d\d:?\d\d)$/i;

/** `iso` (UTC when it carries no offset) as "YYYY-MM-DD HH:mm:ss" in `timeZone`; "—" for none, as is if unreadable. */
export function formatInstant(iso: string | null | undefined, timeZone: string): string {
  if (!iso) return "—";
  const text = iso.includes("T") || iso.includes(" ") ? iso.replace(" ", "T") : `${iso}T00:00:00`;
  const when = new Date(HAS_ZONE.test(text) ? text : `${text}Z`);
  if (Number.isNaN(when.getTime())) return iso;
  const options: Intl.DateTimeFormatOptions = {
    year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit",
    hourCycle: "h23",
  };
  try {
    return new Intl.DateTimeFormat("sv-SE", { ...options, timeZone }).format(when);
  } catch {
    return new Intl.DateTimeFormat("sv-SE", { ...options, timeZone: "UTC" }).format(when) + " UTC";
  }
}

/** The IANA zones this browser knows (for the time-zone picker), with `current` always among them. */
export function timeZones(current?: string): string[] {
  const all = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  const zones = all.length ? [...all] : ["Asia/Shanghai", "Asia/Hong_Kong", "Asia/Singapore", "Asia/Tokyo", "Europe/London", "America/New_York", "UTC"];
  if (current && !zones.includes(current)) zones.unshift(current);
  if (!zones.includes("UTC")) zones.push("UTC");
  return zones;
}

/** The instant a local day `YYYY-MM-DD` starts in `timeZone`, as an ISO UTC string (for the API's filters). */
export function dayStart(day: string, timeZone: string): string {
  const [y, m, d] = day.split("-").map(Number);
  const guess = Date.UTC(y, m - 1, d);
  let zone = timeZone;
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: zone });
  } catch {
    zone = "UTC";
  }
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat("en-US", {
      timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit",
    })
      .formatToParts(new Date(guess))
      .map((p) => [p.type, p.value]),
  );
  const wall = Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour, +parts.minute, +parts.second);
  return new Date(guess - (wall - guess)).toISOString();
}

/** The day after `YYYY-MM-DD`. */
export function nextDay(day: string): string {
  const [y, m, d] = day.split("-").map(Number);
  return new Date(Date.UTC(y, m - 1, d + 1)).toISOString().slice(0, 10);
}
