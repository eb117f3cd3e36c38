// The event registry: name, display names (zh/en), active or passive (an admin switches it), the volume of the
// last 30 days.
import { App, Flex, Switch, Table, Tag, Typography } from "antd";
import { useEffect, useMemo, useState } from "react";
import { useTranslation } from "react-i18next";
import { api, unwrap } from "../../api/client";
import type { components } from "../../api/schema";
import { useAuth } from "../../auth/AuthContext";
import { EmptyState, ErrorState, Loading } from "../../components/States";
import { useApi } from "../../lib/useApi";
import { apiTime } from "../../lib/apiTime";
import { useUrlParam } from "../../lib/urlState";
import { SearchBox } from "./SearchBox";
import { VOLUME_DAYS, volumeDefinitions, volumesFrom } from "./volumes";

type EventOut = components["schemas"]["EventOut"];
const errorText = (error: unknown) => (error instanceof Error ? error.message : String(error));

export function EventsTab() {
  const { t, i18n } = useTranslation();
  const { project, can } = useAuth();
  const { message } = App.useApp();
  const [search, setSearch] = useUrlParam("q");
  const [changing, setChanging] = useState<string | null>(null);
  const events = useApi(
    (signal) => unwrap(api.GET("/api/v1/event-names", { params: { query: { project } }, signal })),
    [project],
  );
  const [rows, setRows] = useState<EventOut[] | null>(null);
  useEffect(() => setRows(null), [events.data]);
  const shown = rows ?? events.data ?? [];
  const definitions = useMemo(() => volumeDefinitions(events.data ?? []), [events.data]);
  const volumes = useApi(
    async (signal) => {
      const results = await Promise.all(
        definitions.map((definition) =>
          unwrap(
            api.POST("/api/v1/query", {
              body: { project, definition, explain: false, timeout: 120, use_cache: true },
              signal,
            }),
          ).then((r) => r.result),
        ),
      );
      return volumesFrom(definitions, results);
    },
    [project, definitions],
  );
  const admin = can("admin");
  const number = new Intl.NumberFormat(i18n.language === "en" ? "en-US" : "zh-CN");
  const needle = search.trim().toLowerCase();
  const filtered = shown.filter(
    (e) =>
      !needle ||
      e.event.toLowerCase().includes(needle) ||
      (e.display_zh ?? "").toLowerCase().includes(needle) ||
      (e.display_en ?? "").toLowerCase().includes(needle),
  );

  const setActive = async (row: EventOut, active: boolean) => {
    setChanging(row.event);
    try {
      const changed = await unwrap(
        api.PUT("/api/v1/event-names/{event}", {
          params: { path: { event: row.event }, query: { project } },
          body: { project, active },
        }),
      );
      setRows(shown.map((e) => (e.event === row.event ? { ...e, active: changed.active } : e)));
      message.success(t("common.saved"));
    } catch (err) {
      message.error(errorText(err));
    } finally {
      setChanging(null);
    }
  };

  if (events.error) return <ErrorState error={events.error} onRetry={events.reload} />;
  if (events.loading && !events.data) return <Loading />;

  const columns = [
    { title: t("data.event"), dataIndex: "event", render: (v: string) => <Typography.Text code>{v}</Typography.Text> },
    { title: t("data.displayZh"), dataIndex: "display_zh", render: (v: string | null) => v ?? "—" },
    { title: t("data.displayEn"), dataIndex: "display_en", render: (v: string | null) => v ?? "—" },
    {
      title: t("data.activeFlag"),
      dataIndex: "active",
      render: (active: boolean, row: EventOut) =>
        admin ? (
          <Flex gap={8} align="center">
            <Switch
              checked={active}
              loading={changing === row.event}
              onChange={(value) => void setActive(row, value)}
              aria-label={t("data.toggleActive", { event: row.event })}
              data-testid={`event-active-${row.event}`}
            />
            <span>{active ? t("data.active") : t("data.passive")}</span>
          </Flex>
        ) : (
          <Tag color={active ? "blue" : "default"}>{active ? t("data.active") : t("data.passive")}</Tag>
        ),
    },
    {
      title: t("data.volume", { days: VOLUME_DAYS }),
      key: "volume",
      align: "right" as const,
      sorter: (a: EventOut, b: EventOut) => (volumes.data?.get(a.event) ?? 0) - (volumes.data?.get(b.event) ?? 0),
      render: (_: unknown, row: EventOut) =>
        volumes.error ? "—" : volumes.loading ? "…" : number.format(volumes.data?.get(row.event) ?? 0),
    },
    { title: t("data.firstSeen"), dataIndex: "first_seen", render: apiTime },
  ];

  return (
    <div>
      <Flex gap={12} align="center" wrap style={{ marginBottom: 12 }}>
        <SearchBox search={search} onSearch={setSearch} label={t("data.searchEvents")} testId="events-search" />
        <Typography.Text type="secondary">{t("data.activeHint")}</Typography.Text>
      </Flex>
      {volumes.error ? (
        <Typography.Paragraph type="warning" data-testid="volumes-error">
          {t("data.volumeFailed", { message: errorText(volumes.error) })}
        </Typography.Paragraph>
      ) : null}
      <div data-testid="events-table">
      {filtered.length === 0 ? (
        <EmptyState>{t("data.noEvents")}</EmptyState>
      ) : (
        <Table<EventOut>
          rowKey="event"
          size="small"
          dataSource={filtered}
          columns={columns}
          pagination={{ pageSize: 50, hideOnSinglePage: true }}
        />
      )}
      </div>
    </div>
  );
}
