// The saved analyses ("insights") of the project: kind, name, dashboard, last change; open, delete, start a new one.
// The search text and the kind filter live in the URL.
import { DeleteOutlined, PlusOutlined } from "@ant-design/icons";
import { App, Button, Input, Popconfirm, Select, Space, Table, Tag, Typography } from "antd";
import dayjs from "dayjs";
import { useMemo } from "react";
import { useTranslation } from "react-i18next";
import { Link, useNavigate } from "react-router-dom";
import { api, unwrap } from "../../api/client";
import { useAuth } from "../../auth/AuthContext";
import { EmptyState, ErrorState } from "../../components/States";
import { useUrlParam } from "../../lib/urlState";
import { useApi } from "../../lib/useApi";
import type { Insight } from "./actions/SaveInsightModal";
import { KINDS } from "./definition";

/** Insights whose name or description holds `search` (any case) and, when given, of `kind`; newest change first. */
export function filterInsights(insights: Insight[], search: string, kind: string): Insight[] {
  const needle = search.trim().toLowerCase();
  return insights
    .filter((i) => (!kind || i.kind === kind) && (!needle || `${i.name} ${i.description}`.toLowerCase().includes(needle)))
    .sort((a, b) => b.updated_at.localeCompare(a.updated_at));
}

export function InsightList() {
  const { t } = useTranslation();
  const { project, can } = useAuth();
  const { message } = App.useApp();
  const navigate = useNavigate();
  const [search, setSearch] = useUrlParam("search");
  const [kind, setKind] = useUrlParam("kind");
  const insights = useApi(
    (signal) => unwrap(api.GET("/api/v1/insights", { params: { query: { project } }, signal })),
    [project],
  );
  const rows = useMemo(() => filterInsights(insights.data ?? [], search, kind), [insights.data, search, kind]);
  const link = (path: string) => ({ pathname: path, search: `?project=${encodeURIComponent(project)}` });

  const remove = async (insight: Insight) => {
    try {
      await unwrap(
        api.DELETE("/api/v1/insights/{insight_id}", { params: { path: { insight_id: insight.id }, query: { project } } }),
      );
      message.success(t("common.deleted"));
      insights.reload();
    } catch (err) {
      message.error(err instanceof Error ? err.message : String(err));
    }
  };

  const columns = [
    {
      key: "name", title: t("common.name"),
      render: (_: unknown, i: Insight) => (
        <Space orientation="vertical" size={0}>
          <Link to={link(`/analyses/insights/${i.id}`)} data-testid={`insight-open-${i.id}`}>{i.name}</Link>
          {i.description && <Typography.Text type="secondary">{i.description}</Typography.Text>}
        </Space>
      ),
    },
    {
      key: "kind", title: t("analyses.list.kind"), width: 140,
      render: (_: unknown, i: Insight) => <Tag>{(KINDS as readonly string[]).includes(i.kind) ? t(`analyses.kind.${i.kind}`) : i.kind}</Tag>,
    },
    {
      key: "updated", title: t("common.updatedAt"), width: 180,
      render: (_: unknown, i: Insight) => dayjs(i.updated_at).format("YYYY-MM-DD HH:mm"),
    },
  ];
  if (can("analyse")) {
    columns.push({
      key: "actions", title: t("common.actions"), width: 100,
      render: (_: unknown, i: Insight) => (
        <Popconfirm title={t("common.confirmDelete")} okText={t("common.delete")} cancelText={t("common.cancel")}
          onConfirm={() => remove(i)}>
          <Button type="text" danger icon={<DeleteOutlined />} aria-label={t("common.delete")} data-testid={`insight-delete-${i.id}`} />
        </Popconfirm>
      ),
    });
  }

  return (
    <Space orientation="vertical" style={{ width: "100%" }} size="middle">
      <Space style={{ width: "100%", justifyContent: "space-between" }} wrap>
        <Typography.Title level={3} style={{ margin: 0 }}>{t("analyses.list.title")}</Typography.Title>
        <Button type="primary" icon={<PlusOutlined />} onClick={() => navigate(link("/analyses/new"))} data-testid="analysis-new">
          {t("analyses.list.new")}
        </Button>
      </Space>
      <Space wrap>
        <Input.Search allowClear defaultValue={search} placeholder={t("analyses.list.search")} style={{ width: 260 }}
          onSearch={setSearch} aria-label={t("common.search")} data-testid="insight-search" />
        <Select allowClear value={kind || undefined} placeholder={t("analyses.list.allKinds")} style={{ width: 180 }}
          options={KINDS.map((k) => ({ value: k, label: t(`analyses.kind.${k}`) }))}
          onChange={(v: string | undefined) => setKind(v ?? "")} aria-label={t("analyses.list.kind")} />
      </Space>
      {insights.error ? (
        <ErrorState error={insights.error} onRetry={insights.reload} />
      ) : (
        <Table<Insight>
          data-testid="insight-list"
          rowKey="id"
          loading={insights.loading}
          columns={columns}
          dataSource={rows}
          pagination={rows.length > 20 ? { pageSize: 20 } : false}
          locale={{ emptyText: <EmptyState>{t("analyses.list.empty")}</EmptyState> }}
        />
      )}
    </Space>
  );
}
