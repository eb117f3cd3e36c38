// The settings area: projects (time zone, money property, limits), active events, keys, accounts and roles, and
// the audit log. The tab lives in the URL (?tab=); tabs/visibleTabs says which a role sees (the API refuses the
// others anyway).
import { Tabs, Typography } from "antd";
import { useTranslation } from "react-i18next";
import { useAuth } from "../../auth/AuthContext";
import { useUrlParam } from "../../lib/urlState";
import { AccountsTab } from "./AccountsTab";
import { AuditTab } from "./AuditTab";
import { EventsTab } from "./EventsTab";
import { KeysTab } from "./KeysTab";
import { ProjectsTab } from "./ProjectsTab";
import { visibleTabs } from "./tabs";

export function SettingsPage() {
  const { t } = useTranslation();
  const { me, can } = useAuth();
  const tabs = visibleTabs({
    admin: can("admin"),
    workspace: !!me?.projects.some((p) => p.project === "*"),
    workspaceAdmin: !!me?.workspaceAdmin,
  });
  const [raw, setTab] = useUrlParam("tab");
  const tab = tabs.includes(raw as never) ? raw : tabs[0];
  const content = { projects: <ProjectsTab />, events: <EventsTab />, keys: <KeysTab />, accounts: <AccountsTab />, audit: <AuditTab /> };
  return (
    <div>
      <Typography.Title level={3} style={{ marginTop: 0 }}>
        {t("settings.title")}
      </Typography.Title>
      <Tabs
        activeKey={tab}
        onChange={setTab}
        destroyOnHidden
        items={tabs.map((name) => ({
          key: name,
          label: <span data-testid={`settings-tab-${name}`}>{t(`settings.tabs.${name}`)}</span>,
          children: content[name],
        }))}
      />
    </div>
  );
}
