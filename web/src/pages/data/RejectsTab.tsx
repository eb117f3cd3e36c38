// The rejected records, newest first: when, from where, which row and field, the reason, and the raw input.
import { Flex, Select, Table, Typography } from "antd";
import { useTranslation } from "react-i18next";
import { api, unwrap } from "../../api/client";
import type { components } from "../../api/schema";
import { useAuth } from "../../auth/AuthContext";
import { EmptyState, ErrorState, Loading } from "../../components/States";
import { useApi } from "../../lib/useApi";
import { apiTime } from "../../lib/apiTime";
import { useUrlParam } from "../../lib/urlState";

type Reject = components["schemas"]["Reject"];
const LIMITS = ["50", "200", "1000"];

export function RejectsTab() {
  const { t } = useTranslation();
  const { project } = useAuth();
  const [raw, setLimit] = useUrlParam("limit", "50");
  const limit = LIMITS.includes(raw) ? Number(raw) : 50;
  const rejects = useApi(
    (signal) => unwrap(api.GET("/api/v1/rejects", { params: { query: { project, limit } }, signal })),
    [project, limit],
  );
  const columns = [
    { title: t("data.rejects.receivedAt"), dataIndex: "received_at", width: 180, render: apiTime },
    { title: t("data.rejects.source"), dataIndex: "source", width: 140 },
    { title: t("data.rejects.row"), dataIndex: "row", width: 70, render: (v: number | null) => v ?? "—" },
    { title: t("data.rejects.field"), dataIndex: "field", width: 140, render: (v: string | null) => v ?? "—" },
    { title: t("data.rejects.reason"), dataIndex: "reason" },
    {
      title: t("data.rejects.raw"),
      dataIndex: "raw",
      render: (v: string | null) =>
        v ? (
          <Typography.Text code ellipsis={{ tooltip: v }} style={{ maxWidth: 320 }}>
            {v}
          </Typography.Text>
        ) : (
          "—"
        ),
    },
  ];

  return (
    <div>
      <Flex gap={8} align="center" style={{ marginBottom: 12 }}>
        <Typography.Text type="secondary">{t("data.rejects.show")}</Typography.Text>
        <Select
          value={String(limit)}
          onChange={setLimit}
          options={LIMITS.map((v) => ({ value: v, label: t("data.rejects.latest", { count: Number(v) }) }))}
          style={{ width: 160 }}
          aria-label={t("data.rejects.show")}
          data-testid="rejects-limit"
        />
      </Flex>
      <div data-testid="rejects-table">
      {rejects.error ? (
        <ErrorState error={rejects.error} onRetry={rejects.reload} />
      ) : rejects.loading && !rejects.data ? (
        <Loading />
      ) : !rejects.data?.length ? (
        <EmptyState>{t("data.rejects.none")}</EmptyState>
      ) : (
        <Table<Reject & { key: number }>
          rowKey="key"
          size="small"
          dataSource={rejects.data.map((r, key) => ({ ...r, key }))}
          columns={columns}
          pagination={{ pageSize: 50, hideOnSinglePage: true }}
        />
      )}
      </div>
    </div>
  );
}
