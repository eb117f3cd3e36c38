// One tag (tags.get): its definition, its values, how many people hold it, its latest distribution and its
// coverage over time; edit and delete for analysts.
import { App, Button, Card, Descriptions, Popconfirm, Space, Tag, Tooltip, Typography } from "antd";
import { useMemo } from "react";
import { useTranslation } from "react-i18next";
import { useNavigate, useParams } from "react-router-dom";
import { api, unwrap } from "../../../api/client";
import type { components } from "../../../api/schema";
import { useAuth } from "../../../auth/AuthContext";
import { Chart, type ChartOption } from "../../../components/Chart";
import { EmptyState, ErrorState, Loading } from "../../../components/States";
import { useApi } from "../../../lib/useApi";
import { formatCount, formatShare, formatTime, langOf, titleOf } from "../format";
import { distributionOption } from "./tagForm";

type ShownTag = components["schemas"]["ShownTag"];

function coverageOption(tag: ShownTag, name: string): ChartOption {
  const series = tag.coverage.series;
  return {
    tooltip: { trigger: "axis" },
    grid: { left: 48, right: 16, top: 16, bottom: 32 },
    xAxis: { type: "category", data: series.map((p) => p.run_date) },
    yAxis: { type: "value", min: 0, max: 100, axisLabel: { formatter: "{value}%" } },
    series: [{ name, type: "line", data: series.map((p) => (p.coverage === null ? null : Math.round(p.coverage * 1000) / 10)) }],
  };
}

/** A definition's source in a sentence of its parts (names are shown as code, never interpreted). */
function SourceView({ source }: { source: Record<string, unknown> }) {
  const { t } = useTranslation();
  const parts = Object.entries(source).filter(([k, v]) => k !== "from" && v !== null && v !== undefined &&
    !(Array.isArray(v) && v.length === 0));
  return (
    <Space wrap size={4}>
      <Tag color="blue">{t(`segments.tagSources.${String(source.from)}`)}</Tag>
      {parts.map(([k, v]) => (
        <Typography.Text key={k} code>{`${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`}</Typography.Text>
      ))}
    </Space>
  );
}

export function TagDetail() {
  const { t, i18n } = useTranslation();
  const lang = langOf(i18n.language);
  const { name = "" } = useParams();
  const { project, can } = useAuth();
  const navigate = useNavigate();
  const { message } = App.useApp();
  const tag = useApi(
    (signal) => unwrap(api.GET("/api/v1/tags/{tag}", { params: { path: { tag: name }, query: { project } }, signal })),
    [name, project],
  );
  const data = tag.data;
  const distribution = useMemo(
    () => (data?.coverage.latest ? distributionOption(data.coverage.latest.distribution, lang, t("segments.tags.other")) : null),
    [data, lang, t],
  );
  const coverage = useMemo(() => (data ? coverageOption(data, t("segments.tags.coverage")) : null), [data, t]);
  const search = `?project=${encodeURIComponent(project)}`;

  if (tag.loading && !data) return <Loading />;
  if (tag.error) return <ErrorState error={tag.error} onRetry={tag.reload} />;
  if (!data) return <EmptyState />;
  const def = data.definition as Record<string, unknown>;
  const latest = data.coverage.latest;
  const mayWrite = can("analyse");
  const editable = mayWrite && ["basic", "behaviour", "result", "predictive"].includes(data.kind);
  const remove = async () => {
    try {
      await unwrap(api.DELETE("/api/v1/tags/{tag}", { params: { path: { tag: name }, query: { project } } }));
      message.success(t("common.deleted"));
      navigate({ pathname: "/segments", search: `${search}&tab=tags` });
    } catch (err) {
      message.error(err instanceof Error ? err.message : String(err));
    }
  };
  return (
    <Space orientation="vertical" size="middle" style={{ width: "100%" }} data-testid="tag-detail">
      <Card
        title={<Space><span data-testid="tag-title">{titleOf(data, lang)}</span><Typography.Text code>{data.name}</Typography.Text>
          <Tag>{t(`segments.tagKinds.${data.kind}`)}</Tag>{data.builtin && <Tag color="gold">{t("segments.tags.builtin")}</Tag>}</Space>}
        extra={
          <Space>
            <Tooltip title={editable ? undefined : mayWrite ? t("segments.tags.notEditable") : t("common.noRight")}>
              <Button disabled={!editable} data-testid="tag-edit"
                onClick={() => navigate({ pathname: `/segments/tags/${encodeURIComponent(name)}/edit`, search })}>
                {t("common.edit")}
              </Button>
            </Tooltip>
            <Popconfirm title={t("common.confirmDelete")} onConfirm={remove} disabled={!mayWrite}
              okText={t("common.delete")} cancelText={t("common.cancel")}>
              <Button danger disabled={!mayWrite} data-testid="tag-delete">{t("common.delete")}</Button>
            </Popconfirm>
          </Space>
        }
      >
        <Descriptions size="small" column={{ xs: 1, md: 2 }} items={[
          { key: "type", label: t("segments.tags.type"), children: t(`segments.tagTypes.${data.type}`) },
          { key: "source", label: t("segments.tags.source"), children: <SourceView source={(def.source ?? {}) as Record<string, unknown>} /> },
          { key: "values", label: t("segments.tags.values"),
            children: Array.isArray(def.values) ? <Space wrap size={4}>{(def.values as string[]).map((v) => <Tag key={v}>{v}</Tag>)}</Space> : "—" },
          { key: "desc", label: t("common.description"), children: String(def.description || "—") },
          { key: "users", label: t("segments.tags.users"),
            children: latest ? `${formatCount(latest.users, lang)} / ${formatCount(latest.persons, lang)}` : "—" },
          { key: "coverage", label: t("segments.tags.coverage"), children: formatShare(latest?.coverage, lang) },
          { key: "run", label: t("segments.tags.lastRun"), children: latest ? `${latest.run_date} (${t(`segments.tags.modes.${latest.mode}`)})` : "—" },
          { key: "updated", label: t("common.updatedAt"), children: formatTime(data.updated_at) },
        ]} />
        {latest?.note && <Typography.Paragraph type="secondary">{latest.note}</Typography.Paragraph>}
      </Card>
      <Card size="small" title={t("segments.tags.distribution")}>
        {distribution ? <Chart option={distribution} height={260} testId="tag-distribution" /> : <EmptyState>{t("segments.tags.notComputed")}</EmptyState>}
      </Card>
      <Card size="small" title={t("segments.tags.coverageHistory")}>
        {coverage && data.coverage.series.length ? <Chart option={coverage} height={220} testId="tag-coverage-chart" />
          : <EmptyState>{t("segments.tags.notComputed")}</EmptyState>}
      </Card>
    </Space>
  );
}
