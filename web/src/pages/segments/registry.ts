// What the rule builder, the tag form and the comparison pick from: the project's tags, user properties, events,
// models and segments, loaded once per page and shared through a hook.
import { api, unwrap } from "../../api/client";
import type { components } from "../../api/schema";
import { useAuth } from "../../auth/AuthContext";
import { useApi } from "../../lib/useApi";

export type ListedTag = components["schemas"]["ListedTag"];
export type PropertyOut = components["schemas"]["PropertyOut"];
export type EventOut = components["schemas"]["EventOut"];
export type Segment = components["schemas"]["Segment"];

export interface Registry {
  tags: ListedTag[];
  userProperties: PropertyOut[];
  eventProperties: PropertyOut[];
  events: EventOut[];
  models: string[];
  segments: Segment[];
}

export const EMPTY_REGISTRY: Registry = {
  tags: [], userProperties: [], eventProperties: [], events: [], models: [], segments: [],
};

export async function loadRegistry(project: string, signal: AbortSignal): Promise<Registry> {
  const query = { params: { query: { project } }, signal };
  const [tags, properties, events, models, segments] = await Promise.all([
    unwrap(api.GET("/api/v1/tags", query)),
    unwrap(api.GET("/api/v1/properties", query)),
    unwrap(api.GET("/api/v1/event-names", query)),
    unwrap(api.GET("/api/v1/models", { signal })),
    unwrap(api.GET("/api/v1/segments", query)),
  ]);
  return {
    tags,
    userProperties: properties.filter((p) => p.table === "users"),
    eventProperties: properties.filter((p) => p.table === "events"),
    events,
    models,
    segments,
  };
}

export function useRegistry() {
  const { project } = useAuth();
  const loaded = useApi((signal) => loadRegistry(project, signal), [project]);
  return { ...loaded, registry: loaded.data ?? EMPTY_REGISTRY };
}
