// The property registry: table (events, users, items), name, display names, type.
import { Flex, Select, Table, Tag, Typography } from "antd";
import { useTranslation } from "react-i18next";
import { api, unwrap } from "../../api/client";
import type { components } from "../../api/schema";
import { useAuth } from "../../auth/AuthContext";
import { EmptyState, ErrorState, Loading } from "../../components/States";
import { useApi } from "../../lib/useApi";
import { apiTime } from "../../lib/apiTime";
import { useUrlParam } from "../../lib/urlState";
import { SearchBox } from "./SearchBox";

type PropertyOut = components["schemas"]["PropertyOut"];
const TABLES = ["events", "users", "items"] as const;
const code = (v: string) => <Typography.Text code>{v}</Typography.Text>;

export function PropertiesTab() {
  const { t } = useTranslation();
  const { project } = useAuth();
  const [search, setSearch] = useUrlParam("q");
  const [table, setTable] = useUrlParam("table", "all");
  const properties = useApi(
    (signal) => unwrap(api.GET("/api/v1/properties", { params: { query: { project } }, signal })),
    [project],
  );
  if (properties.error) return <ErrorState error={properties.error} onRetry={properties.reload} />;
  if (properties.loading && !properties.data) return <Loading />;

  const needle = search.trim().toLowerCase();
  const rows = (properties.data ?? []).filter(
    (p) =>
      (table === "all" || p.table === table) &&
      (!needle || [p.name, p.display_zh ?? "", p.display_en ?? ""].some((s) => s.toLowerCase().includes(needle))),
  );
  const tableLabel = (name: string) =>
    (TABLES as readonly string[]).includes(name) ? t(`data.tables.${name}`) : name;
  const columns = [
    { title: t("data.table"), dataIndex: "table", render: (v: string) => <Tag>{tableLabel(v)}</Tag> },
    { title: t("data.property"), dataIndex: "name", render: code },
    { title: t("data.displayZh"), dataIndex: "display_zh", render: (v: string | null) => v ?? "—" },
    { title: t("data.displayEn"), dataIndex: "display_en", render: (v: string | null) => v ?? "—" },
    { title: t("data.type"), dataIndex: "type" },
    { title: t("data.firstSeen"), dataIndex: "first_seen", render: apiTime },
  ];

  return (
    <div>
      <Flex gap={12} wrap style={{ marginBottom: 12 }}>
        <Select
          value={table}
          onChange={setTable}
          style={{ width: 160 }}
          options={[
            { value: "all", label: t("common.all") },
            ...TABLES.map((name) => ({ value: name, label: t(`data.tables.${name}`) })),
          ]}
          aria-label={t("data.table")}
          data-testid="properties-table-filter"
        />
        <SearchBox search={search} onSearch={setSearch} label={t("data.searchProperties")} testId="properties-search" />
      </Flex>
      <div data-testid="properties-table">
      {rows.length === 0 ? (
        <EmptyState>{t("data.noProperties")}</EmptyState>
      ) : (
        <Table<PropertyOut>
          rowKey={(p) => `${p.table}.${p.name}`}
          size="small"
          dataSource={rows}
          columns={columns}
          pagination={{ pageSize: 50, hideOnSinglePage: true }}
        />
      )}
      </div>
    </div>
  );
}
