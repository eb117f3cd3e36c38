// The sign-in endpoints (/api/v1/auth/…): the session lives in an httpOnly cookie the console never reads; the
// CSRF token lives in a readable cookie that the API client echoes in a header.
import { cookieValue, CSRF_COOKIE, CSRF_HEADER, toApiError } from "../api/client";

export type Right = "read" | "analyse" | "operate" | "write" | "admin" | "pii";

export interface ProjectRole {
  /** The project's name, or "*" for a role over every project. */
  project: string;
  role: string;
  rights: Right[];
}

export interface Me {
  login: string;
  name: string;
  projects: ProjectRole[];
  /** Whether the account's role over every project is admin (accounts, keys, audit). */
  workspaceAdmin: boolean;
}

/** The account from the API's /auth/me or /auth/login reply, in the console's terms. */
export function toMe(body: Record<string, unknown>): Me {
  const account = (body.account ?? body) as Record<string, unknown>;
  const raw = (body.projects ?? body.roles ?? []) as Array<Record<string, unknown>>;
  const projects: ProjectRole[] = raw.map((r) => ({
    project: (r.project as string | null) ?? "*",
    role: String(r.role ?? ""),
    rights: [...((r.rights as string[] | undefined) ?? []), ...(r.pii ? ["pii"] : [])] as Right[],
  }));
  return {
    login: String(account.login ?? ""),
    name: String(account.name ?? account.display_name ?? account.login ?? ""),
    projects,
    workspaceAdmin: projects.some((p) => p.project === "*" && p.rights.includes("admin")),
  };
}

async function call(path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(path, { credentials: "same-origin", ...init });
}

export async function fetchMe(): Promise<Me | null> {
  const response = await call("/api/v1/auth/me");
  if (response.status === 401) return null;
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw toApiError(response.status, body);
  return toMe(body);
}

export async function signIn(login: string, password: string): Promise<Me> {
  const response = await call("/api/v1/auth/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ login, password }),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw toApiError(response.status, body);
  return (await fetchMe()) ?? toMe(body);
}

export async function signOut(): Promise<void> {
  await call("/api/v1/auth/logout", {
    method: "POST",
    headers: { [CSRF_HEADER]: cookieValue(document.cookie, CSRF_COOKIE) },
  });
}
