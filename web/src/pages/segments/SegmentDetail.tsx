// One segment from a bare URL (/segments/<id>): what it is, its size over time with who entered and left, its
// members page by page, and what to do with it — edit, compare, find look-alikes, export, refresh, delete.
import { App, Button, Card, Descriptions, Popconfirm, Select, Space, Table, Tag, Tooltip, Typography } from "antd";
import { useMemo, useState } from "react";
import { useTranslation } from "react-i18next";
import { Link, useNavigate, useParams } from "react-router-dom";
import { api, unwrap } from "../../api/client";
import type { components } from "../../api/schema";
import { useAuth } from "../../auth/AuthContext";
import { Chart } from "../../components/Chart";
import { EmptyState, ErrorState, Loading } from "../../components/States";
import { useApi } from "../../lib/useApi";
import { useUrlJson, useUrlParam } from "../../lib/urlState";
import { sizeHistoryOption } from "./charts";
import { ExportModal } from "./ExportModal";
import { formatCount, formatTime, langOf } from "./format";
import { LookalikeModal } from "./LookalikeModal";
import { useRegistry } from "./registry";
import { RuleBuilder } from "./rule/RuleBuilder";
import { asGroup, type Rule } from "./rule/ruleModel";

export type ShownSegment = components["schemas"]["ShownSegment"];
const MEMBERS_PAGE = 50;

export function SegmentDetail() {
  const { t, i18n } = useTranslation();
  const lang = langOf(i18n.language);
  const { id } = useParams();
  const segmentId = Number(id);
  const { project, can } = useAuth();
  const navigate = useNavigate();
  const { message } = App.useApp();
  const [dialog, setDialog] = useUrlParam("dialog");
  const [busy, setBusy] = useState(false);

  const seg = useApi(
    (signal) => unwrap(api.GET("/api/v1/segments/{segment_id}", {
      params: { path: { segment_id: segmentId }, query: { project } }, signal,
    })),
    [segmentId, project],
  );
  const search = `?project=${encodeURIComponent(project)}`;

  if (!Number.isInteger(segmentId) || segmentId < 1) return <EmptyState>{t("segments.notFound")}</EmptyState>;
  if (seg.loading && !seg.data) return <Loading />;
  if (seg.error) return <ErrorState error={seg.error} onRetry={seg.reload} />;
  const s = seg.data;
  if (!s) return <EmptyState />;
  const mayWrite = can("analyse");

  const refresh = async () => {
    setBusy(true);
    try {
      await unwrap(api.POST("/api/v1/segments/{segment_id}/refresh", {
        params: { path: { segment_id: segmentId }, query: { project } },
      }));
      message.success(t("segments.refreshed"));
      seg.reload();
    } catch (err) {
      message.error(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };
  const remove = async () => {
    try {
      await unwrap(api.DELETE("/api/v1/segments/{segment_id}", {
        params: { path: { segment_id: segmentId }, query: { project } },
      }));
      message.success(t("common.deleted"));
      navigate({ pathname: "/segments", search: `${search}&tab=segments` });
    } catch (err) {
      message.error(err instanceof Error ? err.message : String(err));
    }
  };
  const noRight = mayWrite ? undefined : t("common.noRight");

  return (
    <Space orientation="vertical" size="middle" style={{ width: "100%" }} data-testid="segment-detail">
      <Card
        title={<Space><Typography.Text strong data-testid="segment-title">{s.name}</Typography.Text>
          <Tag>{t(`segments.kinds.${s.kind}`)}</Tag></Space>}
        extra={
          <Space wrap>
            {s.kind === "rule" && (
              <Tooltip title={noRight}>
                <Button disabled={!mayWrite} data-testid="segment-edit"
                  onClick={() => navigate({ pathname: `/segments/${s.id}/edit`, search })}>{t("common.edit")}</Button>
              </Tooltip>
            )}
            <Button data-testid="segment-compare"
              onClick={() => navigate({ pathname: "/segments/compare", search: `${search}&a=${s.id}&b=everyone` })}>
              {t("segments.compare.action")}
            </Button>
            <Tooltip title={noRight}>
              <Button disabled={!mayWrite} onClick={() => setDialog("lookalike")} data-testid="segment-lookalike">
                {t("segments.lookalike.action")}
              </Button>
            </Tooltip>
            <Button onClick={() => setDialog("export")} data-testid="segment-export">{t("segments.export.action")}</Button>
            <Tooltip title={noRight}>
              <Button disabled={!mayWrite} loading={busy} onClick={refresh} data-testid="segment-refresh-now">
                {t("common.refresh")}
              </Button>
            </Tooltip>
            <Popconfirm title={t("common.confirmDelete")} onConfirm={remove} disabled={!mayWrite}
              okText={t("common.delete")} cancelText={t("common.cancel")}>
              <Tooltip title={noRight}>
                <Button danger disabled={!mayWrite} data-testid="segment-delete">{t("common.delete")}</Button>
              </Tooltip>
            </Popconfirm>
          </Space>
        }
      >
        <Descriptions
          size="small"
          column={{ xs: 1, md: 3 }}
          items={[
            { key: "size", label: t("segments.size"), children: <span data-testid="segment-size">{formatCount(s.size, lang)}</span> },
            { key: "refresh", label: t("segments.refresh"), children: t(`segments.refreshModes.${s.refresh === "manual" ? "manual" : "daily"}`) },
            { key: "refreshed", label: t("segments.refreshedAt"), children: formatTime(s.refreshed_at) },
            { key: "desc", label: t("common.description"), children: s.description || "—", span: 3 },
          ]}
        />
      </Card>
      <DefinitionCard segment={s} />
      <SizeHistory segment={s} />
      <Members segmentId={s.id} />
      <LookalikeModal open={dialog === "lookalike"} seed={s} onClose={() => setDialog("")} />
      <ExportModal open={dialog === "export"} segment={s} onClose={() => setDialog("")} />
    </Space>
  );
}

function DefinitionCard({ segment }: { segment: ShownSegment }) {
  const { t } = useTranslation();
  const { registry } = useRegistry();
  if (segment.kind === "rule") {
    return (
      <Card title={t("segments.rule.title")} size="small">
        <RuleBuilder value={asGroup(segment.definition as unknown as Rule)} registry={registry} disabled
          onChange={() => undefined} />
      </Card>
    );
  }
  return (
    <Card title={t("segments.definition")} size="small">
      <Typography.Paragraph code style={{ whiteSpace: "pre-wrap" }}>
        {JSON.stringify(segment.definition, null, 2)}
      </Typography.Paragraph>
    </Card>
  );
}

function SizeHistory({ segment }: { segment: ShownSegment }) {
  const { t, i18n } = useTranslation();
  const lang = langOf(i18n.language);
  const { project } = useAuth();
  const dates = useMemo(() => Array.from(new Set(segment.runs.map((r) => r.run_date))), [segment.runs]);
  const [day, setDay] = useUrlParam("day", dates[0] ?? "");
  const option = useMemo(() => sizeHistoryOption(segment.runs, t("segments.size")), [segment.runs, t]);
  const changes = useApi(
    (signal) =>
      day
        ? unwrap(api.GET("/api/v1/segments/{segment_id}/changes", {
            params: { path: { segment_id: segment.id }, query: { project, date: day } }, signal,
          }))
        : Promise.resolve(undefined),
    [segment.id, project, day],
  );
  const search = `?project=${encodeURIComponent(project)}`;
  const people = (ids: number[]) => (
    <Space wrap size={4}>
      {ids.slice(0, 20).map((uid) => <Link key={uid} to={{ pathname: `/users/${uid}`, search }}>{uid}</Link>)}
      {ids.length > 20 && <Typography.Text type="secondary">{t("segments.andMore", { n: ids.length - 20 })}</Typography.Text>}
    </Space>
  );
  return (
    <Card title={t("segments.sizeHistory")} size="small">
      {segment.runs.length === 0 ? (
        <EmptyState>{t("segments.noRuns")}</EmptyState>
      ) : (
        <>
          <Chart option={option} height={240} testId="segment-size-chart" />
          <Space style={{ marginTop: 8 }} wrap>
            <Typography.Text>{t("segments.changesOn")}</Typography.Text>
            <Select value={day || undefined} style={{ width: 150 }} options={dates.map((d) => ({ value: d, label: d }))}
              onChange={setDay} data-testid="segment-changes-day" />
          </Space>
          <div data-testid="segment-changes" style={{ marginTop: 8 }}>
            {changes.loading ? <Loading /> : changes.error ? <ErrorState error={changes.error} onRetry={changes.reload} /> :
              changes.data && (
                <Descriptions size="small" column={1} items={[
                  { key: "in", label: t("segments.entered", { n: formatCount(changes.data.entered.length, lang) }), children: people(changes.data.entered) },
                  { key: "out", label: t("segments.left", { n: formatCount(changes.data.left.length, lang) }), children: people(changes.data.left) },
                ]} />
              )}
          </div>
        </>
      )}
    </Card>
  );
}

function Members({ segmentId }: { segmentId: number }) {
  const { t } = useTranslation();
  const { project } = useAuth();
  // the cursors of the pages seen so far, so "previous" works and the page is in the URL
  const [cursors, setCursors] = useUrlJson<number[]>("members", []);
  const after = cursors.length ? cursors[cursors.length - 1] : null;
  const page = useApi(
    (signal) => unwrap(api.GET("/api/v1/segments/{segment_id}/members", {
      params: { path: { segment_id: segmentId }, query: { project, limit: MEMBERS_PAGE, after } }, signal,
    })),
    [segmentId, project, after],
  );
  const search = `?project=${encodeURIComponent(project)}`;
  const rows = (page.data?.user_ids ?? []).map((uid) => ({ key: uid, uid }));
  return (
    <Card title={t("segments.members")} size="small" data-testid="segment-members">
      {page.error ? <ErrorState error={page.error} onRetry={page.reload} /> : (
        <>
          <Table
            size="small"
            loading={page.loading}
            dataSource={rows}
            pagination={false}
            locale={{ emptyText: <EmptyState>{t("segments.noMembers")}</EmptyState> }}
            columns={[{
              title: t("segments.personKey"), dataIndex: "uid",
              render: (uid: number) => <Link to={{ pathname: `/users/${uid}`, search }}>{uid}</Link>,
            }]}
            data-testid="segment-members-table"
          />
          <Space style={{ marginTop: 8 }}>
            <Button disabled={cursors.length === 0} onClick={() => setCursors(cursors.slice(0, -1))}
              data-testid="members-prev">{t("segments.previousPage")}</Button>
            <Button disabled={!page.data?.next} onClick={() => page.data?.next && setCursors([...cursors, page.data.next])}
              data-testid="members-next">{t("segments.nextPage")}</Button>
          </Space>
        </>
      )}
    </Card>
  );
}
