// Projects: the current project's settings (time zone, money property, collector limits, allowed origins) and the
// list of projects, with "new project" for admins over every project.
import { App, Button, Card, Descriptions, Form, Input, InputNumber, Select, Space, Table, Typography } from "antd";
import { useEffect, useState } from "react";
import { useTranslation } from "react-i18next";
import { api, unwrap } from "../../api/client";
import type { components } from "../../api/schema";
import { useAuth } from "../../auth/AuthContext";
import { EmptyState, ErrorState, Loading } from "../../components/States";
import { useApi } from "../../lib/useApi";
import { useUrlParam } from "../../lib/urlState";
import { formatInstant, timeZones } from "./format";
import { FormModal, useFormSubmit } from "./FormModal";

type Project = components["schemas"]["ProjectOut"];
const NUMERIC = /INT|DOUBLE|FLOAT|DECIMAL|NUMERIC|REAL/i;

interface SettingsForm {
  money_property: string;
  rate_per_second: number | null;
  burst: number | null;
  cors_origins: string[];
}

function ProjectSettings({ info, onSaved }: { info: Project; onSaved: () => void }) {
  const { t } = useTranslation();
  const { can } = useAuth();
  const { message } = App.useApp();
  const [form] = Form.useForm<SettingsForm>();
  const [saving, setSaving] = useState(false);
  const editable = can("admin");
  const properties = useApi(
    (signal) => unwrap(api.GET("/api/v1/properties", { params: { query: { project: info.name } }, signal })),
    [info.name],
  );
  const moneyChoices = (properties.data ?? []).filter((p) => p.table === "events" && NUMERIC.test(p.type));

  useEffect(() => {
    form.setFieldsValue({
      money_property: info.money_property,
      rate_per_second: info.rate_per_second ?? null,
      burst: info.burst ?? null,
      cors_origins: info.cors_origins ?? [],
    });
  }, [form, info]);

  const save = async (values: SettingsForm) => {
    setSaving(true);
    try {
      await unwrap(api.PATCH("/api/v1/projects/{name}", { params: { path: { name: info.name } }, body: values }));
      message.success(t("common.saved"));
      onSaved();
    } catch (err) {
      message.error(err instanceof Error ? err.message : String(err));
    } finally {
      setSaving(false);
    }
  };

  return (
    <Card size="small" title={t("settings.projects.current", { name: info.name })} data-testid="project-settings">
      <Descriptions size="small" column={{ xs: 1, md: 3 }} style={{ marginBottom: 16 }}>
        <Descriptions.Item label={t("settings.projects.timezone")}>
          <span data-testid="project-timezone">{info.timezone}</span>
        </Descriptions.Item>
        <Descriptions.Item label={t("common.createdAt")}>{formatInstant(info.created_at, info.timezone)}</Descriptions.Item>
        <Descriptions.Item label={t("settings.projects.writeKey")}>
          {info.write_key ? <Typography.Text code>{info.write_key}</Typography.Text> : t("settings.projects.writeKeyHidden")}
        </Descriptions.Item>
      </Descriptions>
      <Typography.Paragraph type="secondary">{t("settings.projects.timezoneFixed")}</Typography.Paragraph>
      <Form form={form} layout="vertical" onFinish={save} disabled={!editable} style={{ maxWidth: 560 }}>
        <Form.Item name="money_property" label={t("settings.projects.money")} extra={t("settings.projects.moneyHelp")}>
          <Select
            showSearch
            data-testid="project-money"
            loading={properties.loading}
            options={moneyChoices.map((p) => ({
              value: p.name,
              label: p.display_zh || p.display_en ? `${p.name} (${p.display_zh ?? p.display_en})` : p.name,
            }))}
          />
        </Form.Item>
        <Space wrap>
          <Form.Item name="rate_per_second" label={t("settings.projects.rate")} extra={t("settings.projects.rateHelp")}>
            <InputNumber min={0} style={{ width: 200 }} data-testid="project-rate" />
          </Form.Item>
          <Form.Item name="burst" label={t("settings.projects.burst")}>
            <InputNumber min={0} style={{ width: 200 }} data-testid="project-burst" />
          </Form.Item>
        </Space>
        <Form.Item name="cors_origins" label={t("settings.projects.cors")} extra={t("settings.projects.corsHelp")}>
          <Select mode="tags" tokenSeparators={[",", " "]} data-testid="project-cors" open={false} suffixIcon={null} />
        </Form.Item>
        {editable ? (
          <Button type="primary" htmlType="submit" loading={saving} data-testid="project-save">
            {t("common.save")}
          </Button>
        ) : (
          <Typography.Text type="secondary">{t("common.noRight")}</Typography.Text>
        )}
      </Form>
    </Card>
  );
}

function CreateProject({ open, onClose, onCreated }: { open: boolean; onClose: () => void; onCreated: (name: string) => void }) {
  const { t } = useTranslation();
  const [form] = Form.useForm<{ name: string; timezone: string }>();
  const state = useFormSubmit(async (values: { name: string; timezone: string }) => {
    const created = await unwrap(api.POST("/api/v1/projects", { body: values }));
    form.resetFields();
    onCreated(created.name);
  });
  return (
    <FormModal open={open} title={t("settings.projects.create")} okText={t("common.create")} okTestId="project-create-submit"
      onClose={onClose} form={form} state={state}>
      <Form form={form} layout="vertical" onFinish={state.submit} initialValues={{ timezone: "Asia/Shanghai" }}>
        <Form.Item name="name" label={t("common.name")} extra={t("settings.projects.nameHelp")} rules={[{ required: true, message: t("settings.required") }]}>
          <Input data-testid="project-create-name" maxLength={40} />
        </Form.Item>
        <Form.Item name="timezone" label={t("settings.projects.timezone")} rules={[{ required: true, message: t("settings.required") }]}>
          <Select showSearch data-testid="project-create-timezone" options={timeZones().map((z) => ({ value: z, label: z }))} />
        </Form.Item>
      </Form>
    </FormModal>
  );
}

export function ProjectsTab() {
  const { t } = useTranslation();
  const { project, me } = useAuth();
  const { message } = App.useApp();
  const [, setProjectParam] = useUrlParam("project");
  const [creating, setCreating] = useState(false);
  const list = useApi((signal) => unwrap(api.GET("/api/v1/projects", { signal })), []);
  const current = list.data?.find((p) => p.name === project);

  if (list.loading && !list.data) return <Loading />;
  if (list.error) return <ErrorState error={list.error} onRetry={list.reload} />;
  return (
    <Space orientation="vertical" size="middle" style={{ width: "100%" }}>
      {current ? <ProjectSettings info={current} onSaved={list.reload} /> : <EmptyState />}
      <Card
        size="small"
        title={t("settings.projects.all")}
        extra={
          me?.workspaceAdmin && (
            <Button onClick={() => setCreating(true)} data-testid="project-create">
              {t("settings.projects.create")}
            </Button>
          )
        }
      >
        <Table<Project>
          data-testid="projects-table"
          size="small"
          rowKey="name"
          pagination={false}
          dataSource={list.data ?? []}
          locale={{ emptyText: <EmptyState /> }}
          columns={[
            { title: t("common.name"), dataIndex: "name" },
            { title: t("settings.projects.timezone"), dataIndex: "timezone" },
            { title: t("settings.projects.money"), dataIndex: "money_property" },
            { title: t("common.createdAt"), dataIndex: "created_at", render: (v: string, p) => formatInstant(v, p.timezone) },
            {
              title: t("common.actions"),
              key: "open",
              render: (_, p) =>
                p.name === project ? (
                  <Typography.Text type="secondary">{t("settings.projects.isCurrent")}</Typography.Text>
                ) : (
                  <Button size="small" onClick={() => setProjectParam(p.name)} data-testid={`project-open-${p.name}`}>
                    {t("settings.projects.switch")}
                  </Button>
                ),
            },
          ]}
        />
      </Card>
      <CreateProject
        open={creating}
        onClose={() => setCreating(false)}
        onCreated={(name) => {
          setCreating(false);
          message.success(t("settings.projects.created", { name }));
          list.reload();
        }}
      />
    </Space>
  );
}
