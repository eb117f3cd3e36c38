// Active events: which events count as activity (a passive one — a push received, a message delivered — is kept
// but does not make a user active in retention, lifecycle and the models). Admins switch them.
import { App, Card, Input, Switch, Table, Tag, Typography } from "antd";
import { useState } from "react";
import { useTranslation } from "react-i18next";
import { api, unwrap } from "../../api/client";
import type { components } from "../../api/schema";
import { useAuth } from "../../auth/AuthContext";
import { EmptyState, ErrorState, Loading } from "../../components/States";
import { useApi } from "../../lib/useApi";
import { useUrlParam } from "../../lib/urlState";

type EventRow = components["schemas"]["EventOut"];

export function EventsTab() {
  const { t, i18n } = useTranslation();
  const { project, can } = useAuth();
  const { message } = App.useApp();
  const [query, setQuery] = useUrlParam("q");
  const [busy, setBusy] = useState<string | null>(null);
  const events = useApi(
    (signal) => unwrap(api.GET("/api/v1/event-names", { params: { query: { project } }, signal })),
    [project],
  );
  const editable = can("admin");

  const toggle = async (event: string, active: boolean) => {
    setBusy(event);
    try {
      await unwrap(api.PUT("/api/v1/event-names/{event}", { params: { path: { event } }, body: { active, project } }));
      message.success(t("common.saved"));
      events.reload();
    } catch (err) {
      message.error(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(null);
    }
  };

  if (events.loading && !events.data) return <Loading />;
  if (events.error) return <ErrorState error={events.error} onRetry={events.reload} />;
  const needle = query.trim().toLowerCase();
  const rows = (events.data ?? []).filter(
    (e) => !needle || [e.event, e.display_zh, e.display_en].some((v) => v?.toLowerCase().includes(needle)),
  );
  const display = (e: EventRow) => (i18n.language === "en" ? e.display_en ?? e.display_zh : e.display_zh ?? e.display_en);

  return (
    <Card size="small" title={t("settings.events.title")}>
      <Typography.Paragraph type="secondary">{t("settings.events.help")}</Typography.Paragraph>
      <Input.Search
        allowClear
        defaultValue={query}
        onSearch={setQuery}
        placeholder={t("settings.events.search")}
        style={{ maxWidth: 320, marginBottom: 12 }}
        data-testid="events-search"
      />
      <Table<EventRow>
        data-testid="events-table"
        size="small"
        rowKey="event"
        dataSource={rows}
        pagination={{ pageSize: 20, hideOnSinglePage: true }}
        locale={{ emptyText: <EmptyState /> }}
        columns={[
          { title: t("settings.events.event"), dataIndex: "event", render: (v: string) => <Typography.Text code>{v}</Typography.Text> },
          { title: t("settings.events.display"), key: "display", render: (_, e) => display(e) ?? "—" },
          { title: t("settings.events.firstSeen"), dataIndex: "first_seen", render: (v: string) => v.slice(0, 10) },
          {
            title: t("settings.events.active"),
            dataIndex: "active",
            render: (active: boolean, e) =>
              editable ? (
                <Switch
                  checked={active}
                  loading={busy === e.event}
                  onChange={(next) => void toggle(e.event, next)}
                  checkedChildren={t("settings.events.activeOn")}
                  unCheckedChildren={t("settings.events.passive")}
                  aria-label={t("settings.events.activeFor", { event: e.event })}
                  data-testid={`event-active-${e.event}`}
                />
              ) : (
                <Tag color={active ? "blue" : undefined}>{active ? t("settings.events.activeOn") : t("settings.events.passive")}</Tag>
              ),
          },
        ]}
      />
    </Card>
  );
}
