// The settings' forms turned into the API's request bodies (pure, tested): a key, an account, a role grant.
import type { ButtonProps } from "antd";
import type { components } from "../../api/schema";
import type { Role } from "./tabs";

type Schemas = components["schemas"];
export const KEY_RIGHTS = ["read", "analyse", "operate", "write", "admin", "pii"] as const;
export type KeyRight = (typeof KEY_RIGHTS)[number];
/** The project choice meaning "every project" (a workspace-level token or role). */
export const ALL_PROJECTS = "*";

export interface KeyForm {
  kind: "write" | "admin";
  name: string;
  project: string;
  rights: KeyRight[];
}

export function keyRequest(form: KeyForm): Schemas["KeyIn"] {
  const project = form.project === ALL_PROJECTS || !form.project ? null : form.project;
  if (form.kind === "write") return { kind: "write", name: form.name.trim(), project, rights: null };
  return { kind: "admin", name: form.name.trim(), project, rights: [...form.rights] };
}

export interface RoleRow {
  project: string;
  role: Role;
}

export interface AccountForm {
  login: string;
  name: string;
  password: string;
  roles: RoleRow[];
}

export function accountRequest(form: AccountForm): Schemas["CreateAccount"] {
  const seen = new Set<string>();
  const roles = form.roles
    .filter((r) => r.project && r.role)
    .filter((r) => !seen.has(r.project) && seen.add(r.project))
    .map((r) => ({ project: r.project === ALL_PROJECTS ? null : r.project, role: r.role }));
  return { login: form.login.trim().toLowerCase(), name: form.name.trim(), password: form.password, roles };
}

export interface GrantForm {
  project: string;
  /** A role to hold, or "none" to take the role in the project away. */
  role: Role | "none";
}

export function grantRequest(form: GrantForm): Schemas["GrantRoleBody"] {
  const project = form.project === ALL_PROJECTS ? null : form.project;
  if (form.role === "none") return { project, revoke: true };
  return { project, role: form.role, revoke: false };
}

/** Props that put a data-testid on a button antd renders for us (a modal's OK button). */
export function testId(id: string): ButtonProps {
  return { "data-testid": id } as ButtonProps;
}
