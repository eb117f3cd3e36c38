// Which settings tabs a role sees: everyone the active events (read only without admin); accounts with a role over
// every project the projects (the projects' operations are workspace-level); admins the keys; admins over every
// project the accounts and the audit log.
export const SETTINGS_TABS = ["projects", "events", "keys", "accounts", "audit"] as const;
export type SettingsTab = (typeof SETTINGS_TABS)[number];

export interface Powers {
  /** Holds admin in the current project. */
  admin: boolean;
  /** Holds a role over every project. */
  workspace: boolean;
  /** Holds admin over every project. */
  workspaceAdmin: boolean;
}

export function visibleTabs({ admin, workspace, workspaceAdmin }: Powers): SettingsTab[] {
  return SETTINGS_TABS.filter((tab) => {
    if (tab === "projects") return workspace;
    if (tab === "keys") return admin;
    if (tab === "accounts" || tab === "audit") return workspaceAdmin;
    return true;
  });
}

export const ROLES = ["viewer", "analyst", "operator", "admin"] as const;
export type Role = (typeof ROLES)[number];
