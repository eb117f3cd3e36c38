// One person (users.get): who they are (ids, profile), what the models say (RFM class, lifecycle stage, value
// tier, CLV, churn risk), their tags with history, the segments they are in, their orders, and the timeline of
// events. Phone numbers and e-mail addresses come masked unless the account holds the personal-data right and
// asks for them in clear (?unmask=1).
import { Card, Col, Descriptions, Row, Space, Statistic, Switch, Table, Tabs, Tag, Tooltip, Typography } from "antd";
import { useMemo } from "react";
import { useTranslation } from "react-i18next";
import { Link, useParams } from "react-router-dom";
import { api, ApiError, unwrap } from "../../api/client";
import type { components } from "../../api/schema";
import { useAuth } from "../../auth/AuthContext";
import { EmptyState, ErrorState, Loading } from "../../components/States";
import { useApi } from "../../lib/useApi";
import { useUrlParam } from "../../lib/urlState";
import { formatCount, formatNumber, formatTime, formatValue, langOf, titleOf, type Lang } from "../segments/format";
import { sensitiveKind } from "./masking";
import { keyOutputs, type ModelView } from "./outputs";
import { UserSearch } from "./UserSearch";
import { UserTimeline } from "./UserTimeline";

type User = components["schemas"]["User360"];
type TagValue = components["schemas"]["TagValue"];
const STAT = { content: { fontSize: 20 } };
const KNOWN_MODELS = new Set(["rfm", "lifecycle", "clv", "value", "activity", "preference", "churn"]);

/** A field's value, with a "masked" mark when the API masked it (a phone or e-mail field, not shown in clear). */
export function FieldValue({ name, value, unmasked, lang }: { name: string; value: unknown; unmasked: boolean; lang: Lang }) {
  const { t } = useTranslation();
  const masked = !unmasked && sensitiveKind(name) !== null && value !== null && value !== undefined && value !== "";
  return (
    <Space size={4}>
      <span>{formatValue(value, lang)}</span>
      {masked && (
        <Tooltip title={t("common.masked")}>
          <Tag color="orange" data-testid="masked">{t("users.masked")}</Tag>
        </Tooltip>
      )}
    </Space>
  );
}

export function User360() {
  const { t, i18n } = useTranslation();
  const lang = langOf(i18n.language);
  const { key = "" } = useParams();
  const { project, can } = useAuth();
  const mayUnmask = can("pii");
  const [unmaskParam, setUnmask] = useUrlParam("unmask");
  const unmask = mayUnmask && unmaskParam === "1";
  const [tab, setTab] = useUrlParam("tab", "timeline");
  const user = useApi(
    (signal) => unwrap(api.GET("/api/v1/users/{key}", { params: { path: { key }, query: { project, unmask } }, signal })),
    [key, project, unmask],
  );

  if (user.loading && !user.data) return <Loading />;
  if (user.error instanceof ApiError && user.error.status === 404) {
    return (
      <Space orientation="vertical" style={{ width: "100%" }} data-testid="user-not-found">
        <EmptyState>{t("users.notFound", { key })}</EmptyState>
        <UserSearch />
      </Space>
    );
  }
  if (user.error) return <ErrorState error={user.error} onRetry={user.reload} />;
  const u = user.data;
  if (!u) return <EmptyState />;

  return (
    <Space orientation="vertical" size="middle" style={{ width: "100%" }} data-testid="user-360">
      <Card
        title={<Space><span>{t("users.person")}</span><Typography.Text code data-testid="user-key">{key}</Typography.Text>
          <Typography.Text type="secondary">{t("users.personKey", { id: u.user_id })}</Typography.Text></Space>}
        extra={mayUnmask ? (
          <Space>
            <Switch size="small" checked={unmask} onChange={(on) => setUnmask(on ? "1" : "")} data-testid="user-unmask"
              aria-label={t("users.unmask")} />
            <Typography.Text>{t("users.unmask")}</Typography.Text>
          </Space>
        ) : (
          <Typography.Text type="secondary" data-testid="user-masked-hint">{t("common.masked")}</Typography.Text>
        )}
      >
        <Summary user={u} lang={lang} />
      </Card>
      <Row gutter={[16, 16]}>
        <Col xs={24} xl={9}>
          <Space orientation="vertical" size="middle" style={{ width: "100%" }}>
            <Identities user={u} unmasked={unmask} lang={lang} />
            <Profile user={u} unmasked={unmask} lang={lang} />
          </Space>
        </Col>
        <Col xs={24} xl={15}>
          <Card size="small">
            <Tabs activeKey={tab} onChange={setTab} items={[
              { key: "timeline", label: t("users.tabs.timeline"),
                children: <UserTimeline userKey={key} unmask={unmask} /> },
              { key: "tags", label: t("users.tabs.tags", { n: u.tags.length }),
                children: <Tags tags={u.tags} unmasked={unmask} lang={lang} /> },
              { key: "models", label: t("users.tabs.models"), children: <Models models={u.models} lang={lang} /> },
              { key: "segments", label: t("users.tabs.segments"), children: <Segments user={u} /> },
              { key: "orders", label: t("users.tabs.orders"), children: <Orders user={u} lang={lang} /> },
            ]} />
          </Card>
        </Col>
      </Row>
    </Space>
  );
}

function Summary({ user: u, lang }: { user: User; lang: Lang }) {
  const { t } = useTranslation();
  const outputs = keyOutputs(u.models, lang);
  return (
    <Row gutter={[16, 16]} data-testid="user-outputs">
      <Col xs={12} md={4}><Statistic styles={STAT} title={t("users.events")} value={formatCount(u.summary.events, lang)} /></Col>
      <Col xs={12} md={4}><Statistic styles={STAT} title={t("users.activeDays")} value={formatCount(u.summary.active_days, lang)} /></Col>
      <Col xs={12} md={4}><Statistic styles={STAT} title={t("users.lastActive")} value={formatTime(u.summary.last_active ?? u.summary.last_event).slice(0, 10)} /></Col>
      {outputs.map((o) => (
        <Col xs={12} md={4} key={o.key}>
          <Statistic styles={STAT} title={t(`users.outputs.${o.key}`)}
            value={typeof o.value === "number" ? formatNumber(o.value, lang, 2)
              : o.key === "value" ? t(`models.tiers.${o.value}`, { defaultValue: o.value }) : o.value} />
        </Col>
      ))}
    </Row>
  );
}

function Identities({ user: u, unmasked, lang }: { user: User; unmasked: boolean; lang: Lang }) {
  const { t } = useTranslation();
  return (
    <Card size="small" title={t("users.identities")}>
      <Table size="small" pagination={false} rowKey={(r) => `${r.id_type}:${String(r.id_value)}`} dataSource={u.identities}
        locale={{ emptyText: <EmptyState /> }}
        columns={[
          { title: t("users.idType"), dataIndex: "id_type", width: "42%",
            render: (v: string) => <Typography.Text code style={{ wordBreak: "keep-all", whiteSpace: "nowrap" }}>{v}</Typography.Text> },
          { title: t("users.idValue"), render: (_: unknown, r) => <FieldValue name={r.id_type} value={r.id_value} unmasked={unmasked} lang={lang} /> },
          { title: t("users.since"), dataIndex: "since", render: (v: string | null) => formatTime(v) },
        ]} />
    </Card>
  );
}

function Profile({ user: u, unmasked, lang }: { user: User; unmasked: boolean; lang: Lang }) {
  const { t } = useTranslation();
  const entries = Object.entries(u.profile).sort(([a], [b]) => a.localeCompare(b));
  return (
    <Card size="small" title={t("users.profile")} data-testid="user-profile">
      {entries.length === 0 ? <EmptyState /> : (
        <Descriptions size="small" column={1} items={entries.map(([name, value]) => ({
          key: name,
          label: name,
          children: <FieldValue name={name} value={value} unmasked={unmasked} lang={lang} />,
        }))} />
      )}
    </Card>
  );
}

function Tags({ tags, unmasked, lang }: { tags: TagValue[]; unmasked: boolean; lang: Lang }) {
  const { t } = useTranslation();
  const { project } = useAuth();
  const search = `?project=${encodeURIComponent(project)}`;
  return (
    <Table size="small" rowKey="name" dataSource={tags} data-testid="user-tags" pagination={{ pageSize: 15, hideOnSinglePage: true }}
      locale={{ emptyText: <EmptyState>{t("users.noTags")}</EmptyState> }}
      expandable={{
        rowExpandable: (tag) => tag.history.length > 0,
        expandedRowRender: (tag) => (
          <Table size="small" pagination={false} rowKey={(h) => `${h.from}:${h.changed_at}`} dataSource={[...tag.history].reverse()}
            columns={[
              { title: t("common.value"), render: (_: unknown, h) => <FieldValue name={tag.name} value={h.value} unmasked={unmasked} lang={lang} /> },
              { title: t("common.from"), dataIndex: "from" },
              { title: t("common.to"), dataIndex: "to", render: (v: string | null) => v ?? t("users.current") },
              { title: t("users.changedAt"), dataIndex: "changed_at", render: (v: string) => formatTime(v) },
            ]} />
        ),
      }}
      columns={[
        { title: t("users.tag"), render: (_: unknown, tag) => (
          <Link to={{ pathname: `/segments/tags/${encodeURIComponent(tag.name)}`, search }}>{titleOf(tag, lang)}</Link>) },
        { title: t("common.value"), render: (_: unknown, tag) => <FieldValue name={tag.name} value={tag.value} unmasked={unmasked} lang={lang} /> },
        { title: t("users.since"), render: (_: unknown, tag) => tag.history[tag.history.length - 1]?.from ?? "—" },
        { title: t("users.changes"), align: "right", render: (_: unknown, tag) => formatCount(tag.history.length, lang) },
      ]} />
  );
}

function Models({ models, lang }: { models: ModelView[]; lang: Lang }) {
  const { t } = useTranslation();
  if (models.length === 0) return <EmptyState>{t("users.noModels")}</EmptyState>;
  return (
    <Space orientation="vertical" style={{ width: "100%" }} data-testid="user-models">
      {models.map((m) => (
        <Card key={m.model} size="small"
          title={<Space>{KNOWN_MODELS.has(m.model) ? t(`segments.models.${m.model}`) : m.model}
            <Typography.Text type="secondary">{`${m.model_version} · ${m.run_date}`}</Typography.Text></Space>}>
          <Descriptions size="small" column={{ xs: 1, md: 2 }} items={Object.entries(m.outputs).map(([k, v]) => ({
            key: k, label: k, children: formatValue(v, lang),
          }))} />
          {m.previous && (
            <Typography.Paragraph type="secondary" style={{ marginTop: 8 }}>
              {t("users.previousRun", { date: m.previous.run_date })}{" "}
              {Object.entries(m.previous.changed).map(([k, v]) => `${k}: ${formatValue(v, lang)}`).join("; ")}
            </Typography.Paragraph>
          )}
        </Card>
      ))}
    </Space>
  );
}

function Segments({ user: u }: { user: User }) {
  const { t } = useTranslation();
  const { project } = useAuth();
  const search = `?project=${encodeURIComponent(project)}`;
  const rows = useMemo(() => [...u.segments].sort((a, b) => Number(b.member) - Number(a.member)), [u.segments]);
  return (
    <Table size="small" rowKey="id" dataSource={rows} pagination={false} data-testid="user-segments"
      locale={{ emptyText: <EmptyState>{t("users.noSegments")}</EmptyState> }}
      columns={[
        { title: t("common.name"), render: (_: unknown, s) => <Link to={{ pathname: `/segments/${s.id}`, search }}>{s.name}</Link> },
        { title: t("users.member"), render: (_: unknown, s) => (s.member ? <Tag color="blue">{t("common.yes")}</Tag> : <Tag>{t("common.no")}</Tag>) },
        { title: t("users.intervals"), render: (_: unknown, s) => s.intervals.length === 0 ? "—" :
          s.intervals.map((i) => `${formatTime(i.entered)} → ${i.left ? formatTime(i.left) : t("users.current")}`).join("; ") },
      ]} />
  );
}

function Orders({ user: u, lang }: { user: User; lang: Lang }) {
  const { t } = useTranslation();
  const o = u.orders;
  return (
    <Space orientation="vertical" style={{ width: "100%" }}>
      <Space size="large">
        <Statistic title={t("users.orderCount", { event: o.event })} value={formatCount(o.count, lang)} />
        <Statistic title={t("users.orderAmount")} value={formatNumber(o.amount, lang, 2)} />
      </Space>
      <Table size="small" rowKey="event_id" dataSource={o.items} pagination={{ pageSize: 10, hideOnSinglePage: true }}
        locale={{ emptyText: <EmptyState>{t("users.noOrders")}</EmptyState> }}
        columns={[
          { title: t("users.time"), dataIndex: "time", render: (v: string | null) => formatTime(v) },
          { title: t("users.properties"), render: (_: unknown, r) => (
            <Typography.Text type="secondary">
              {Object.entries(r.properties).filter(([k]) => !k.startsWith("$")).map(([k, v]) => `${k}: ${formatValue(v, lang)}`).join(" · ")}
            </Typography.Text>) },
        ]} />
    </Space>
  );
}
