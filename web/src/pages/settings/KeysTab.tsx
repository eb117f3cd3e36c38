// Keys: write keys (the collector's) and API tokens with their rights; create one (its secret is shown once, in a
// box to copy), revoke one, give or take an API token's personal-data right.
import {
  Alert, App, Button, Card, Checkbox, Form, Input, Modal, Popconfirm, Radio, Select, Space, Switch, Table, Tag, Typography,
} from "antd";
import { useState } from "react";
import { useTranslation } from "react-i18next";
import { api, unwrap } from "../../api/client";
import type { components } from "../../api/schema";
import { useAuth } from "../../auth/AuthContext";
import { EmptyState, ErrorState, Loading } from "../../components/States";
import { useApi } from "../../lib/useApi";
import { useUrlParam } from "../../lib/urlState";
import { formatInstant } from "./format";
import { FormModal, useFormSubmit } from "./FormModal";
import { keyRequest, KEY_RIGHTS, type KeyForm } from "./requests";
import { useProjectZone } from "./useProjectZone";

type Key = components["schemas"]["KeyOut"];
const ALL = "*";

function CreateKey({ open, onClose, onCreated }: { open: boolean; onClose: () => void; onCreated: (key: Key) => void }) {
  const { t } = useTranslation();
  const { project, me } = useAuth();
  const [form] = Form.useForm<KeyForm>();
  const kind = Form.useWatch("kind", form) ?? "write";
  const projects = useApi((signal) => unwrap(api.GET("/api/v1/projects", { signal })), []);
  const rights = KEY_RIGHTS.filter((r) => r !== "pii" || me?.workspaceAdmin);

  const state = useFormSubmit(async (values: KeyForm) => {
    const key = await unwrap(api.POST("/api/v1/keys", { body: keyRequest(values) }));
    form.resetFields();
    onCreated(key);
  });

  const projectChoices = [
    ...(kind === "admin" && me?.workspaceAdmin ? [{ value: ALL, label: t("settings.allProjects") }] : []),
    ...(projects.data ?? []).map((p) => ({ value: p.name, label: p.name })),
  ];
  return (
    <FormModal open={open} title={t("settings.keys.create")} okText={t("common.create")} okTestId="key-create-submit"
      onClose={onClose} form={form} state={state}>
      <Form<KeyForm>
        form={form}
        layout="vertical"
        onFinish={state.submit}
        initialValues={{ kind: "write", name: "", project, rights: ["read", "analyse"] }}
      >
        <Form.Item name="kind" label={t("settings.keys.kind")}>
          <Radio.Group
            data-testid="key-kind"
            options={[
              { value: "write", label: t("settings.keys.kinds.write") },
              { value: "admin", label: t("settings.keys.kinds.admin") },
            ]}
          />
        </Form.Item>
        <Typography.Paragraph type="secondary">{t(`settings.keys.kindHelp.${kind}`)}</Typography.Paragraph>
        <Form.Item name="name" label={t("common.name")} rules={[{ max: 100 }]}>
          <Input data-testid="key-name" />
        </Form.Item>
        <Form.Item name="project" label={t("common.project")}>
          <Select data-testid="key-project" options={projectChoices} loading={projects.loading} />
        </Form.Item>
        {kind === "admin" && (
          <Form.Item name="rights" label={t("settings.keys.rights")} rules={[{ required: true, message: t("settings.required") }]}>
            <Checkbox.Group
              data-testid="key-rights"
              options={rights.map((r) => ({ value: r, label: t(`settings.rights.${r}`) }))}
            />
          </Form.Item>
        )}
      </Form>
    </FormModal>
  );
}

/** The new key's secret, once: copy it now, it is never shown again. */
function SecretBox({ created, onClose }: { created: Key | null; onClose: () => void }) {
  const { t } = useTranslation();
  return (
    <Modal
      open={!!created}
      title={t("settings.keys.secretTitle", { name: created?.name ?? "" })}
      onCancel={onClose}
      footer={<Button type="primary" onClick={onClose} data-testid="key-secret-close">{t("settings.keys.secretDone")}</Button>}
      destroyOnHidden
    >
      <Alert type="warning" showIcon title={t("settings.keys.secretOnce")} style={{ marginBottom: 12 }} />
      <Typography.Paragraph
        copyable={{ text: created?.secret ?? "", tooltips: [t("settings.copy"), t("common.copied")] }}
        code
        data-testid="key-secret"
        style={{ wordBreak: "break-all" }}
      >
        {created?.secret}
      </Typography.Paragraph>
    </Modal>
  );
}

export function KeysTab() {
  const { t } = useTranslation();
  const { me } = useAuth();
  const { message } = App.useApp();
  const zone = useProjectZone();
  const [showRevoked, setShowRevoked] = useUrlParam("revoked");
  const [creating, setCreating] = useState(false);
  const [created, setCreated] = useState<Key | null>(null);
  const keys = useApi((signal) => unwrap(api.GET("/api/v1/keys", { params: { query: {} }, signal })), []);

  const act = async (call: Promise<unknown>, done: string) => {
    try {
      await call;
      message.success(done);
      keys.reload();
    } catch (err) {
      message.error(err instanceof Error ? err.message : String(err));
    }
  };
  const revoke = (key: Key) =>
    act(unwrap(api.DELETE("/api/v1/keys/{key_id}", { params: { path: { key_id: key.id } } })), t("settings.keys.revoked"));
  const grantPii = (key: Key, on: boolean) =>
    act(
      unwrap(api.POST("/api/v1/keys/{key_id}/grants", { params: { path: { key_id: key.id } }, body: { right: "pii", revoke: !on } })),
      t("common.saved"),
    );

  if (keys.loading && !keys.data) return <Loading />;
  if (keys.error) return <ErrorState error={keys.error} onRetry={keys.reload} />;
  const rows = (keys.data ?? []).filter((k) => showRevoked === "1" || !k.revoked_at);

  return (
    <Card
      size="small"
      title={t("settings.keys.title")}
      extra={
        <Space>
          <Switch
            size="small"
            checked={showRevoked === "1"}
            onChange={(on) => setShowRevoked(on ? "1" : "")}
            aria-label={t("settings.keys.showRevoked")}
            data-testid="keys-show-revoked"
          />
          <span>{t("settings.keys.showRevoked")}</span>
          <Button type="primary" onClick={() => setCreating(true)} data-testid="key-create">
            {t("settings.keys.create")}
          </Button>
        </Space>
      }
    >
      <Table<Key>
        data-testid="keys-table"
        size="small"
        rowKey="id"
        dataSource={rows}
        pagination={{ pageSize: 20, hideOnSinglePage: true }}
        locale={{ emptyText: <EmptyState /> }}
        columns={[
          { title: t("common.name"), dataIndex: "name", render: (v: string, k) => (
            <Space>
              {v || "—"}
              {k.service && <Tag>{t("settings.keys.service")}</Tag>}
            </Space>
          ) },
          { title: t("settings.keys.kind"), dataIndex: "kind", render: (v: string) => t(`settings.keys.kinds.${v === "admin" ? "admin" : "write"}`) },
          { title: t("common.project"), dataIndex: "project", render: (v: string | null) => v ?? t("settings.allProjects") },
          {
            title: t("settings.keys.rights"),
            dataIndex: "rights",
            render: (rights: string[] = []) => rights.map((r) => (
              <Tag key={r} color={r === "pii" ? "red" : undefined}>
                {(KEY_RIGHTS as readonly string[]).includes(r) ? t(`settings.rights.${r}`) : r}
              </Tag>
            )),
          },
          { title: t("settings.keys.prefix"), dataIndex: "prefix", render: (v: string) => <Typography.Text code>{v}…</Typography.Text> },
          { title: t("common.createdAt"), dataIndex: "created_at", render: (v: string) => formatInstant(v, zone) },
          {
            title: t("common.status"),
            dataIndex: "revoked_at",
            render: (v: string | null) =>
              v ? <Tag>{t("settings.keys.revokedAt", { at: formatInstant(v, zone) })}</Tag> : <Tag color="green">{t("settings.keys.live")}</Tag>,
          },
          {
            title: t("common.actions"),
            key: "actions",
            render: (_, k) =>
              k.revoked_at || k.service ? null : (
                <Space>
                  {k.kind === "admin" && me?.workspaceAdmin && (
                    <Switch
                      size="small"
                      checked={(k.rights ?? []).includes("pii")}
                      onChange={(on) => void grantPii(k, on)}
                      checkedChildren={t("settings.rights.pii")}
                      unCheckedChildren={t("settings.rights.pii")}
                      aria-label={t("settings.keys.piiFor", { name: k.name })}
                      data-testid={`key-pii-${k.id}`}
                    />
                  )}
                  <Popconfirm
                    title={t("settings.keys.revokeConfirm", { name: k.name || k.prefix })}
                    onConfirm={() => void revoke(k)}
                    okText={t("settings.keys.revoke")}
                    cancelText={t("common.cancel")}
                  >
                    <Button size="small" danger data-testid={`key-revoke-${k.id}`}>
                      {t("settings.keys.revoke")}
                    </Button>
                  </Popconfirm>
                </Space>
              ),
          },
        ]}
      />
      <CreateKey
        open={creating}
        onClose={() => setCreating(false)}
        onCreated={(key) => {
          setCreating(false);
          setCreated(key);
          keys.reload();
        }}
      />
      <SecretBox created={created} onClose={() => setCreated(null)} />
    </Card>
  );
}
