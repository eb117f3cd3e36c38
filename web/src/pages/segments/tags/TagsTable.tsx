// The project's tags (tags.list) by kind, with coverage and the latest run; a row opens the tag.
import { Button, Input, Segmented, Space, Table, Tag, Tooltip, Typography } from "antd";
import { useTranslation } from "react-i18next";
import { Link, useNavigate } from "react-router-dom";
import { api, unwrap } from "../../../api/client";
import { useAuth } from "../../../auth/AuthContext";
import { ErrorState } from "../../../components/States";
import { useApi } from "../../../lib/useApi";
import { useUrlParam } from "../../../lib/urlState";
import { formatCount, formatShare, formatTime, langOf, titleOf } from "../format";
import type { ListedTag } from "../registry";
import { ALL_KINDS } from "./tagForm";

const coverageOf = (tag: ListedTag): number | null => {
  const stats = tag.last_run?.stats as { coverage?: number } | undefined;
  return typeof stats?.coverage === "number" ? stats.coverage : null;
};

export function TagsTable() {
  const { t, i18n } = useTranslation();
  const lang = langOf(i18n.language);
  const { project, can } = useAuth();
  const navigate = useNavigate();
  const [kind, setKind] = useUrlParam("kind", "all");
  const [q, setQ] = useUrlParam("tq");
  const tags = useApi((signal) => unwrap(api.GET("/api/v1/tags", { params: { query: { project } }, signal })), [project]);
  const search = `?project=${encodeURIComponent(project)}`;
  const needle = q.trim().toLowerCase();
  const rows = (tags.data ?? []).filter(
    (tag) => (kind === "all" || tag.kind === kind) &&
      (!needle || [tag.name, tag.title_zh, tag.title_en].some((s) => s.toLowerCase().includes(needle))),
  );
  if (tags.error) return <ErrorState error={tags.error} onRetry={tags.reload} />;
  return (
    <Space orientation="vertical" style={{ width: "100%" }}>
      <Space wrap style={{ justifyContent: "space-between", width: "100%" }}>
        <Space wrap>
          <Segmented value={kind} onChange={(v) => setKind(String(v))} data-testid="tags-kind"
            options={[{ value: "all", label: t("common.all") },
              ...ALL_KINDS.filter((k) => k !== "sql" && k !== "upload").map((k) => ({ value: k, label: t(`segments.tagKinds.${k}`) }))]} />
          <Input.Search allowClear value={q} onChange={(e) => setQ(e.target.value)} style={{ width: 220 }}
            placeholder={t("segments.tags.search")} data-testid="tags-search" />
        </Space>
        <Tooltip title={can("analyse") ? undefined : t("common.noRight")}>
          <Button type="primary" disabled={!can("analyse")} data-testid="tag-new"
            onClick={() => navigate({ pathname: "/segments/tags/new", search })}>{t("segments.tags.new")}</Button>
        </Tooltip>
      </Space>
      <Typography.Text type="secondary">{t("segments.tags.kindsHint")}</Typography.Text>
      <Table
        size="small"
        rowKey="name"
        loading={tags.loading}
        dataSource={rows}
        data-testid="tags-table"
        pagination={{ pageSize: 20, hideOnSinglePage: true }}
        columns={[
          { title: t("segments.tags.title"), render: (_: unknown, tag: ListedTag) => (
            <Link to={{ pathname: `/segments/tags/${encodeURIComponent(tag.name)}`, search }}>{titleOf(tag, lang)}</Link>) },
          { title: t("common.name"), dataIndex: "name", render: (n: string) => <Typography.Text code>{n}</Typography.Text> },
          { title: t("segments.tags.kind"), dataIndex: "kind", render: (k: string) => <Tag>{t(`segments.tagKinds.${k}`)}</Tag> },
          { title: t("segments.tags.type"), dataIndex: "type", render: (ty: string) => t(`segments.tagTypes.${ty}`) },
          { title: t("segments.tags.coverage"), align: "right", render: (_: unknown, tag: ListedTag) => formatShare(coverageOf(tag), lang),
            sorter: (a: ListedTag, b: ListedTag) => (coverageOf(a) ?? -1) - (coverageOf(b) ?? -1) },
          { title: t("segments.tags.users"), align: "right", render: (_: unknown, tag: ListedTag) => formatCount(tag.last_run?.users, lang) },
          { title: t("segments.tags.lastRun"), render: (_: unknown, tag: ListedTag) => tag.last_run?.run_date ?? "—" },
          { title: t("common.updatedAt"), dataIndex: "updated_at", render: (d: string) => formatTime(d) },
        ]}
      />
    </Space>
  );
}
