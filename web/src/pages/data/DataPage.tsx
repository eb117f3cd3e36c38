// Data: the event and property registries (display names, active/passive, volumes), the collector's status, the
// rejected records with their reasons, and file import. The open tab is in the URL (?tab=).
import { Tabs, Typography } from "antd";
import { useTranslation } from "react-i18next";
import { useUrlParam } from "../../lib/urlState";
import { CollectorTab } from "./CollectorTab";
import { EventsTab } from "./EventsTab";
import { ImportTab } from "./ImportTab";
import { PropertiesTab } from "./PropertiesTab";
import { RejectsTab } from "./RejectsTab";

const TABS = ["events", "properties", "collector", "rejects", "import"] as const;
type Tab = (typeof TABS)[number];

const PANES: Record<Tab, () => React.ReactNode> = {
  events: () => <EventsTab />,
  properties: () => <PropertiesTab />,
  collector: () => <CollectorTab />,
  rejects: () => <RejectsTab />,
  import: () => <ImportTab />,
};

export function DataPage() {
  const { t } = useTranslation();
  const [raw, setTab] = useUrlParam("tab", "events");
  const tab: Tab = (TABS as readonly string[]).includes(raw) ? (raw as Tab) : "events";
  return (
    <div>
      <Typography.Title level={3} style={{ marginTop: 0 }}>
        {t("data.title")}
      </Typography.Title>
      <Tabs
        activeKey={tab}
        onChange={setTab}
        destroyOnHidden
        items={TABS.map((key) => ({
          key,
          label: <span data-testid={`data-tab-${key}`}>{t(`data.tabs.${key}`)}</span>,
          children: PANES[key](),
        }))}
      />
    </div>
  );
}
