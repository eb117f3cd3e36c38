// The audit log (admins over every project): every change — who, what, when, where from — newest first, with
// its before and after as a list of changed fields; filters live in the URL, older entries come with "load more".
import { Button, Card, DatePicker, Form, Input, Select, Space, Table, Tag, Typography } from "antd";
import dayjs from "dayjs";
import { useEffect, useState } from "react";
import { useTranslation } from "react-i18next";
import { api, unwrap } from "../../api/client";
import type { components } from "../../api/schema";
import { EmptyState, ErrorState, Loading } from "../../components/States";
import { useApi } from "../../lib/useApi";
import { useUrlParam } from "../../lib/urlState";
import { diffJson, showValue, type Change } from "./auditDiff";
import { dayStart, formatInstant, nextDay } from "./format";
import { useProjectZone } from "./useProjectZone";

type Entry = components["schemas"]["AuditEntry"];
const PAGE = 50;
const KIND_COLOR: Record<Change["kind"], string> = { added: "green", removed: "red", changed: "blue" };
const MAX_ROWS = 200;

function EntryDiff({ entry }: { entry: Entry }) {
  const { t } = useTranslation();
  const changes = diffJson(entry.before, entry.after);
  const shown = changes.slice(0, MAX_ROWS);
  return (
    <div data-testid="audit-diff">
      {changes.length === 0 ? (
        <Typography.Text type="secondary">{t("settings.audit.noDiff")}</Typography.Text>
      ) : (
        <Table<Change>
          size="small"
          rowKey="path"
          pagination={false}
          dataSource={shown}
          columns={[
            { title: t("settings.audit.field"), dataIndex: "path", render: (v: string) => <Typography.Text code>{v}</Typography.Text> },
            { title: t("settings.audit.change"), dataIndex: "kind", width: 90, render: (k: Change["kind"]) => <Tag color={KIND_COLOR[k]}>{t(`settings.audit.kinds.${k}`)}</Tag> },
            { title: t("settings.audit.before"), dataIndex: "before", render: (v: unknown) => <span style={{ wordBreak: "break-all" }}>{showValue(v)}</span> },
            { title: t("settings.audit.after"), dataIndex: "after", render: (v: unknown) => <span style={{ wordBreak: "break-all" }}>{showValue(v)}</span> },
          ]}
        />
      )}
      {changes.length > MAX_ROWS && (
        <Typography.Paragraph type="secondary">{t("settings.audit.moreChanges", { count: changes.length - MAX_ROWS })}</Typography.Paragraph>
      )}
      {entry.request !== null && entry.request !== undefined && (
        <Typography.Paragraph type="secondary" style={{ marginTop: 8, marginBottom: 0 }}>
          {t("settings.audit.request")}: <Typography.Text code>{showValue(entry.request, 400)}</Typography.Text>
        </Typography.Paragraph>
      )}
    </div>
  );
}

export function AuditTab() {
  const { t } = useTranslation();
  const zone = useProjectZone();
  const [actor, setActor] = useUrlParam("actor");
  const [action, setAction] = useUrlParam("action");
  const [inProject, setInProject] = useUrlParam("in");
  const [since, setSince] = useUrlParam("since");
  const [until, setUntil] = useUrlParam("until");
  const projects = useApi((signal) => unwrap(api.GET("/api/v1/projects", { signal })), []);
  const filters = {
    actor: actor || null,
    action: action || null,
    project: inProject || null,
    since: since ? dayStart(since, zone) : null,
    until: until ? dayStart(nextDay(until), zone) : null,
  };
  const first = useApi(
    (signal) => unwrap(api.GET("/api/v1/audit", { params: { query: { ...filters, limit: PAGE } }, signal })),
    [actor, action, inProject, since, until, zone],
  );
  const [older, setOlder] = useState<Entry[]>([]);
  const [next, setNext] = useState<number | null>(null);
  const [more, setMore] = useState<{ loading: boolean; error?: unknown }>({ loading: false });

  useEffect(() => {
    setOlder([]);
    setNext(first.data?.next_before_id ?? null);
  }, [first.data]);

  const loadMore = async () => {
    if (next === null) return;
    setMore({ loading: true });
    try {
      const page = await unwrap(api.GET("/api/v1/audit", { params: { query: { ...filters, before_id: next, limit: PAGE } } }));
      setOlder((rows) => [...rows, ...page.entries]);
      setNext(page.next_before_id ?? null);
      setMore({ loading: false });
    } catch (err) {
      setMore({ loading: false, error: err });
    }
  };

  const rows = [...(first.data?.entries ?? []), ...older];
  return (
    <Card size="small" title={t("settings.audit.title")}>
      <Form layout="inline" style={{ marginBottom: 12, rowGap: 8 }} data-testid="audit-filters">
        <Form.Item label={t("settings.audit.actor")}>
          <Input.Search allowClear defaultValue={actor} onSearch={setActor} style={{ width: 180 }} data-testid="audit-actor" />
        </Form.Item>
        <Form.Item label={t("settings.audit.action")}>
          <Input.Search allowClear defaultValue={action} onSearch={setAction} placeholder="segments." style={{ width: 180 }} data-testid="audit-action" />
        </Form.Item>
        <Form.Item label={t("common.project")}>
          <Select
            allowClear
            style={{ width: 160 }}
            value={inProject || undefined}
            onChange={(v?: string) => setInProject(v ?? "")}
            placeholder={t("common.all")}
            options={(projects.data ?? []).map((p) => ({ value: p.name, label: p.name }))}
            data-testid="audit-project"
          />
        </Form.Item>
        <Form.Item label={t("settings.audit.when")}>
          <DatePicker.RangePicker
            allowEmpty={[true, true]}
            value={[since ? dayjs(since) : null, until ? dayjs(until) : null]}
            onChange={(range) => {
              setSince(range?.[0] ? range[0].format("YYYY-MM-DD") : "");
              setUntil(range?.[1] ? range[1].format("YYYY-MM-DD") : "");
            }}
            data-testid="audit-dates"
          />
        </Form.Item>
      </Form>
      {first.loading && !first.data ? (
        <Loading />
      ) : first.error ? (
        <ErrorState error={first.error} onRetry={first.reload} />
      ) : (
        <>
          <Table<Entry>
            data-testid="audit-table"
            size="small"
            rowKey="id"
            dataSource={rows}
            pagination={false}
            loading={first.loading}
            locale={{ emptyText: <EmptyState>{t("settings.audit.none")}</EmptyState> }}
            expandable={{ expandedRowRender: (entry) => <EntryDiff entry={entry} /> }}
            columns={[
              { title: t("settings.audit.at", { zone }), dataIndex: "at", width: 180, render: (v: string) => formatInstant(v, zone) },
              {
                title: t("settings.audit.actor"),
                key: "actor",
                render: (_, e) => (
                  <Space size={4}>
                    <Tag>{t(`settings.audit.actorKinds.${["account", "token", "owner"].includes(e.actor_kind) ? e.actor_kind : "token"}`)}</Tag>
                    {e.actor_name}
                  </Space>
                ),
              },
              { title: t("settings.audit.action"), dataIndex: "action", render: (v: string) => <Typography.Text code>{v}</Typography.Text> },
              { title: t("common.project"), dataIndex: "project", render: (v: string | null) => v ?? "—" },
              {
                title: t("settings.audit.target"),
                dataIndex: "target",
                render: (v: Record<string, unknown>) => (v && Object.keys(v).length ? showValue(v, 80) : "—"),
              },
              { title: t("settings.audit.address"), dataIndex: "address", render: (v: string | null) => v ?? "—" },
            ]}
          />
          {more.error !== undefined && <ErrorState error={more.error} onRetry={() => void loadMore()} />}
          <div style={{ textAlign: "center", marginTop: 12 }}>
            <Button onClick={() => void loadMore()} loading={more.loading} disabled={next === null} data-testid="audit-more">
              {next === null ? t("settings.audit.end") : t("settings.audit.more")}
            </Button>
          </div>
        </>
      )}
    </Card>
  );
}
