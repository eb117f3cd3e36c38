// The current project's time zone (instants in the settings are shown in it); UTC until it is known.
import { api, unwrap } from "../../api/client";
import { useAuth } from "../../auth/AuthContext";
import { useApi } from "../../lib/useApi";

export function useProjectZone(): string {
  const { project } = useAuth();
  const info = useApi(
    (signal) => unwrap(api.GET("/api/v1/projects/{name}", { params: { path: { name: project } }, signal })),
    [project],
  );
  return info.data?.timezone ?? "UTC";
}
