// The analyses area: the saved insights, a new analysis, an opened insight (its definition and result).
import { Breadcrumb, Space, Typography } from "antd";
import { useTranslation } from "react-i18next";
import { Link, Route, Routes, useParams } from "react-router-dom";
import { api, unwrap } from "../../api/client";
import { useAuth } from "../../auth/AuthContext";
import { ErrorState, Loading } from "../../components/States";
import { NotFound } from "../NotFound";
import { useApi } from "../../lib/useApi";
import { AnalysisBuilder } from "./AnalysisBuilder";
import { InsightList } from "./InsightList";

function Crumbs({ current }: { current: string }) {
  const { t } = useTranslation();
  const { project } = useAuth();
  return (
    <Breadcrumb
      items={[
        { title: <Link to={{ pathname: "/analyses", search: `?project=${encodeURIComponent(project)}` }}>{t("common.nav.analyses")}</Link> },
        { title: current },
      ]}
    />
  );
}

function NewAnalysis() {
  const { t } = useTranslation();
  return (
    <Space orientation="vertical" style={{ width: "100%" }}>
      <Crumbs current={t("analyses.list.new")} />
      <AnalysisBuilder />
    </Space>
  );
}

function InsightView() {
  const { id } = useParams();
  const { project } = useAuth();
  const insightId = Number(id);
  const insight = useApi(
    (signal) =>
      unwrap(api.GET("/api/v1/insights/{insight_id}", { params: { path: { insight_id: insightId }, query: { project } }, signal })),
    [insightId, project],
  );
  if (!Number.isInteger(insightId) || insightId < 1) return <NotFound />;
  if (insight.error) return <ErrorState error={insight.error} onRetry={insight.reload} />;
  if (!insight.data) return <Loading />;
  return (
    <Space orientation="vertical" style={{ width: "100%" }}>
      <Crumbs current={insight.data.name} />
      <Typography.Title level={3} style={{ margin: 0 }} data-testid="insight-title">{insight.data.name}</Typography.Title>
      {insight.data.description && <Typography.Paragraph type="secondary">{insight.data.description}</Typography.Paragraph>}
      <AnalysisBuilder key={insight.data.id} insight={insight.data} onInsightSaved={insight.reload} />
    </Space>
  );
}

export function AnalysesPage() {
  return (
    <Routes>
      <Route index element={<InsightList />} />
      <Route path="new" element={<NewAnalysis />} />
      <Route path="insights/:id" element={<InsightView />} />
      <Route path="*" element={<NotFound />} />
    </Routes>
  );
}
