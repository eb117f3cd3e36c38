// Whether the signed-in account may call the routes that span projects (the collector's status, the service's
// jobs): those need read over every project, i.e. a role over "*". Asking without it costs a 403 on the console.
import type { Me } from "../../auth/session";

export function readsWorkspace(me: Me | null): boolean {
  return Boolean(me?.projects.some((p) => p.project === "*" && p.rights.includes("read")));
}
