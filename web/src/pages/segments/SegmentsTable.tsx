// The project's segments (segments.list) with their sizes; a row opens the segment.
import { Button, Input, Space, Table, Tag, Tooltip } from "antd";
import { useTranslation } from "react-i18next";
import { Link, useNavigate } from "react-router-dom";
import { api, unwrap } from "../../api/client";
import { useAuth } from "../../auth/AuthContext";
import { ErrorState } from "../../components/States";
import { useApi } from "../../lib/useApi";
import { useUrlParam } from "../../lib/urlState";
import { formatCount, formatTime, langOf } from "./format";
import type { Segment } from "./registry";

export function SegmentsTable() {
  const { t, i18n } = useTranslation();
  const lang = langOf(i18n.language);
  const { project, can } = useAuth();
  const navigate = useNavigate();
  const [q, setQ] = useUrlParam("sq");
  const list = useApi((signal) => unwrap(api.GET("/api/v1/segments", { params: { query: { project } }, signal })), [project]);
  const search = `?project=${encodeURIComponent(project)}`;
  const needle = q.trim().toLowerCase();
  const rows = (list.data ?? []).filter((s) => !needle || s.name.toLowerCase().includes(needle));
  if (list.error) return <ErrorState error={list.error} onRetry={list.reload} />;
  return (
    <Space orientation="vertical" style={{ width: "100%" }}>
      <Space wrap style={{ justifyContent: "space-between", width: "100%" }}>
        <Input.Search allowClear value={q} onChange={(e) => setQ(e.target.value)} style={{ width: 240 }}
          placeholder={t("segments.searchSegments")} data-testid="segments-search" />
        <Space>
          <Button onClick={() => navigate({ pathname: "/segments/compare", search })} data-testid="segments-compare">
            {t("segments.compare.action")}
          </Button>
          <Tooltip title={can("analyse") ? undefined : t("common.noRight")}>
            <Button type="primary" disabled={!can("analyse")} data-testid="segment-new"
              onClick={() => navigate({ pathname: "/segments/new", search })}>{t("segments.new")}</Button>
          </Tooltip>
        </Space>
      </Space>
      <Table
        size="small"
        rowKey="id"
        loading={list.loading}
        dataSource={rows}
        data-testid="segments-table"
        pagination={{ pageSize: 20, hideOnSinglePage: true }}
        columns={[
          { title: t("common.name"), dataIndex: "name",
            render: (n: string, s: Segment) => <Link to={{ pathname: `/segments/${s.id}`, search }}>{n}</Link> },
          { title: t("segments.kind"), dataIndex: "kind", render: (k: string) => <Tag>{t(`segments.kinds.${k}`)}</Tag> },
          { title: t("segments.size"), dataIndex: "size", align: "right", render: (n: number | null) => formatCount(n, lang),
            sorter: (a: Segment, b: Segment) => (a.size ?? -1) - (b.size ?? -1) },
          { title: t("segments.refresh"), dataIndex: "refresh",
            render: (r: string) => t(`segments.refreshModes.${r === "manual" ? "manual" : "daily"}`) },
          { title: t("segments.refreshedAt"), dataIndex: "refreshed_at", render: (d: string | null) => formatTime(d) },
          { title: t("common.description"), dataIndex: "description", ellipsis: true },
        ]}
      />
    </Space>
  );
}
