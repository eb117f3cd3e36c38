// The project's registry as the builder needs it: events and properties with their display names in the console's
// language, and the project's time zone (projects.show), loaded once per project.
import { useCallback, useMemo } from "react";
import { useTranslation } from "react-i18next";
import { api, unwrap } from "../../api/client";
import type { components } from "../../api/schema";
import { useAuth } from "../../auth/AuthContext";
import { useApi } from "../../lib/useApi";

export type EventInfo = components["schemas"]["EventOut"];
export type PropertyInfo = components["schemas"]["PropertyOut"];

export interface Registry {
  events: EventInfo[];
  properties: PropertyInfo[];
  /** The project's time zone, "" when the account may not read the project's settings. */
  timezone: string;
  /** An event's display name in the console's language, else its name. */
  eventLabel: (name: string) => string;
  /** A property's display name in the console's language, else its name. */
  propertyLabel: (name: string, table?: string) => string;
}

/** The display name in `lang` of an entry with display_zh / display_en, else its own name. */
export function displayName(entry: { display_zh: string | null; display_en: string | null } | undefined, name: string, lang: string): string {
  if (!entry) return name;
  const shown = lang === "en" ? entry.display_en : entry.display_zh;
  return shown || entry.display_en || entry.display_zh || name;
}

export function useRegistry() {
  const { project, me } = useAuth();
  // projects.show is a workspace-level read: an account with a role in this project only is not asked for it (a
  // refused call would log an error in the browser); its dates are still the project's, only the zone's name is
  // not shown.
  const readsWorkspace = !!me?.projects.some((p) => p.project === "*" && p.rights.includes("read"));
  const { i18n } = useTranslation();
  const loaded = useApi(
    async (signal) => {
      const query = { params: { query: { project } }, signal };
      const [events, properties, info] = await Promise.all([
        unwrap(api.GET("/api/v1/event-names", query)),
        unwrap(api.GET("/api/v1/properties", query)),
        readsWorkspace
          ? unwrap(api.GET("/api/v1/projects/{name}", { params: { path: { name: project } }, signal }))
          : Promise.resolve(null),
      ]);
      return { events, properties, timezone: info?.timezone ?? "" };
    },
    [project, readsWorkspace],
  );
  const lang = i18n.language;
  const data = loaded.data;
  const byEvent = useMemo(() => new Map((data?.events ?? []).map((e) => [e.event, e])), [data]);
  const byProperty = useMemo(
    () => new Map((data?.properties ?? []).map((p) => [`${p.table}:${p.name}`, p])),
    [data],
  );
  const eventLabel = useCallback(
    (name: string) => displayName(byEvent.get(name), name, lang),
    [byEvent, lang],
  );
  const propertyLabel = useCallback(
    (name: string, table = "events") => displayName(byProperty.get(`${table}:${name}`), name, lang),
    [byProperty, lang],
  );
  const registry: Registry | undefined = useMemo(
    () => (data ? { ...data, eventLabel, propertyLabel } : undefined),
    [data, eventLabel, propertyLabel],
  );
  return { registry, error: loaded.error, loading: loaded.loading, reload: loaded.reload };
}
