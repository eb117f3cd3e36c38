// The project's dashboards: open, create, rename, delete (creating and changing need the analyse right).
import { DeleteOutlined, EditOutlined, PlusOutlined } from "@ant-design/icons";
import { App, Button, Flex, Popconfirm, Table, Typography } from "antd";
import { useState } from "react";
import { useTranslation } from "react-i18next";
import { Link, useNavigate } from "react-router-dom";
import { api, unwrap } from "../../api/client";
import type { components } from "../../api/schema";
import { useAuth } from "../../auth/AuthContext";
import { EmptyState, ErrorState, Loading } from "../../components/States";
import { apiTime } from "../../lib/apiTime";
import { useApi } from "../../lib/useApi";
import { NameModal, type Naming } from "./NameModal";

type Dashboard = components["schemas"]["SavedDashboard"];

export function DashboardList() {
  const { t } = useTranslation();
  const { project, can } = useAuth();
  const { message } = App.useApp();
  const navigate = useNavigate();
  const [editing, setEditing] = useState<Dashboard | "new" | null>(null);
  const list = useApi(
    (signal) => unwrap(api.GET("/api/v1/dashboards", { params: { query: { project } }, signal })),
    [project],
  );
  const writer = can("analyse");
  const search = `?project=${encodeURIComponent(project)}`;

  const save = async (values: Naming) => {
    if (editing === "new") {
      const made = await unwrap(
        api.POST("/api/v1/dashboards", { params: { query: { project } }, body: { project, ...values, layout: [] } }),
      );
      message.success(t("common.saved"));
      navigate(`${made.id}${search}`);
    } else if (editing) {
      await unwrap(
        api.PATCH("/api/v1/dashboards/{dashboard_id}", {
          params: { path: { dashboard_id: editing.id }, query: { project } },
          body: { project, ...values },
        }),
      );
      message.success(t("common.saved"));
      list.reload();
    }
  };

  const remove = async (board: Dashboard) => {
    try {
      await unwrap(
        api.DELETE("/api/v1/dashboards/{dashboard_id}", {
          params: { path: { dashboard_id: board.id }, query: { project } },
        }),
      );
      message.success(t("common.deleted"));
      list.reload();
    } catch (err) {
      message.error(err instanceof Error ? err.message : String(err));
    }
  };

  const columns = [
    {
      title: t("common.name"),
      dataIndex: "name",
      render: (_: unknown, d: Dashboard) => (
        <Link to={`${d.id}${search}`} data-testid={`dashboard-open-${d.id}`}>
          {d.name}
        </Link>
      ),
    },
    { title: t("common.description"), dataIndex: "description" },
    { title: t("dashboards.tiles"), key: "tiles", render: (_: unknown, d: Dashboard) => d.layout.length },
    { title: t("dashboards.createdBy"), dataIndex: "created_by" },
    { title: t("common.updatedAt"), dataIndex: "updated_at", render: apiTime },
    ...(writer
      ? [
          {
            title: t("common.actions"),
            key: "actions",
            render: (_: unknown, d: Dashboard) => (
              <Flex gap={4}>
                <Button
                  size="small"
                  icon={<EditOutlined />}
                  onClick={() => setEditing(d)}
                  data-testid={`dashboard-rename-${d.id}`}
                >
                  {t("dashboards.rename")}
                </Button>
                <Popconfirm
                  title={t("common.confirmDelete")}
                  okText={t("common.delete")}
                  cancelText={t("common.cancel")}
                  onConfirm={() => remove(d)}
                >
                  <Button size="small" danger icon={<DeleteOutlined />} data-testid={`dashboard-delete-${d.id}`}>
                    {t("common.delete")}
                  </Button>
                </Popconfirm>
              </Flex>
            ),
          },
        ]
      : []),
  ];

  return (
    <div>
      <Flex justify="space-between" align="center" style={{ marginBottom: 16 }}>
        <Typography.Title level={3} style={{ margin: 0 }}>
          {t("dashboards.title")}
        </Typography.Title>
        {writer && (
          <Button
            type="primary"
            icon={<PlusOutlined />}
            onClick={() => setEditing("new")}
            data-testid="dashboard-create"
          >
            {t("dashboards.create")}
          </Button>
        )}
      </Flex>
      <div data-testid="dashboard-list">
      {list.error ? (
        <ErrorState error={list.error} onRetry={list.reload} />
      ) : list.loading && !list.data ? (
        <Loading />
      ) : !list.data?.length ? (
        <EmptyState>{t("dashboards.none")}</EmptyState>
      ) : (
        <Table<Dashboard>
          rowKey="id"
          dataSource={list.data}
          columns={columns}
          pagination={{ pageSize: 20, hideOnSinglePage: true }}
        />
      )}
      </div>
      <NameModal
        open={editing !== null}
        title={editing === "new" ? t("dashboards.create") : t("dashboards.rename")}
        initial={editing && editing !== "new" ? { name: editing.name, description: editing.description } : EMPTY}
        onSave={save}
        onClose={() => setEditing(null)}
      />
    </div>
  );
}

const EMPTY: Naming = { name: "", description: "" };
