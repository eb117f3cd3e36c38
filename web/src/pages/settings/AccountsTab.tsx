// Accounts and roles (admins over every project): the operators' accounts with their role in each project and
// the personal-data right, create one with a password, give or take a role, disable or enable, reset a password.
import { App, Button, Card, Form, Input, Popconfirm, Select, Space, Switch, Table, Tag, Typography } from "antd";
import { useEffect, useState } from "react";
import { useTranslation } from "react-i18next";
import { api, unwrap } from "../../api/client";
import type { components } from "../../api/schema";
import { useAuth } from "../../auth/AuthContext";
import { EmptyState, ErrorState, Loading } from "../../components/States";
import { useApi } from "../../lib/useApi";
import { formatInstant } from "./format";
import { FormModal, useFormSubmit } from "./FormModal";
import { accountRequest, ALL_PROJECTS, grantRequest, type AccountForm, type GrantForm } from "./requests";
import { ROLES } from "./tabs";
import { useProjectZone } from "./useProjectZone";

type Account = components["schemas"]["AccountOut"];
const MIN_PASSWORD = 10;

function useProjectChoices() {
  const { t } = useTranslation();
  const projects = useApi((signal) => unwrap(api.GET("/api/v1/projects", { signal })), []);
  return [
    { value: ALL_PROJECTS, label: t("settings.allProjects") },
    ...(projects.data ?? []).map((p) => ({ value: p.name, label: p.name })),
  ];
}

function passwordRules(t: (k: string, o?: Record<string, unknown>) => string, loginField?: string) {
  return [
    { required: true, message: t("settings.required") },
    { min: MIN_PASSWORD, message: t("settings.accounts.passwordShort", { n: MIN_PASSWORD }) },
    ...(loginField
      ? [({ getFieldValue }: { getFieldValue: (n: string) => unknown }) => ({
          validator: (_: unknown, value: string) =>
            value && value.toLowerCase() === String(getFieldValue(loginField) ?? "").toLowerCase()
              ? Promise.reject(new Error(t("settings.accounts.passwordIsLogin")))
              : Promise.resolve(),
        })]
      : []),
  ];
}

function CreateAccount({ open, onClose, onDone }: { open: boolean; onClose: () => void; onDone: () => void }) {
  const { t } = useTranslation();
  const { project } = useAuth();
  const [form] = Form.useForm<AccountForm & { confirm: string }>();
  const projects = useProjectChoices();
  const roleOptions = ROLES.map((r) => ({ value: r, label: t(`common.roles.${r}`) }));

  const state = useFormSubmit(async (values: AccountForm) => {
    await unwrap(api.POST("/api/v1/accounts", { body: accountRequest(values) }));
    form.resetFields();
    onDone();
  });

  return (
    <FormModal open={open} title={t("settings.accounts.create")} okText={t("common.create")} okTestId="account-create-submit"
      onClose={onClose} form={form} state={state} width={560}>
      <Form form={form} layout="vertical" onFinish={state.submit} initialValues={{ name: "", roles: [{ project, role: "viewer" }] }}>
        <Form.Item name="login" label={t("settings.accounts.login")} extra={t("settings.accounts.loginHelp")}
          rules={[{ required: true, message: t("settings.required") }, { max: 64 }]}>
          <Input autoComplete="off" data-testid="account-login" />
        </Form.Item>
        <Form.Item name="name" label={t("settings.accounts.name")} rules={[{ max: 100 }]}>
          <Input data-testid="account-name" />
        </Form.Item>
        <Form.Item name="password" label={t("settings.accounts.password")} rules={passwordRules(t, "login")}
          extra={t("settings.accounts.passwordHelp", { n: MIN_PASSWORD })}>
          <Input.Password autoComplete="new-password" data-testid="account-password" />
        </Form.Item>
        <Form.Item name="confirm" label={t("settings.accounts.confirm")} dependencies={["password"]}
          rules={[{ required: true, message: t("settings.required") }, ({ getFieldValue }) => ({
            validator: (_, v) => (v === getFieldValue("password") ? Promise.resolve() : Promise.reject(new Error(t("settings.accounts.mismatch")))),
          })]}>
          <Input.Password autoComplete="new-password" data-testid="account-password-confirm" />
        </Form.Item>
        <Typography.Text strong>{t("settings.accounts.roles")}</Typography.Text>
        <Form.List name="roles">
          {(fields, { add, remove }) => (
            <div style={{ marginTop: 8 }}>
              {fields.map((field) => (
                <Space key={field.key} align="baseline" wrap>
                  <Form.Item name={[field.name, "project"]} rules={[{ required: true, message: t("settings.required") }]}>
                    <Select style={{ width: 180 }} options={projects} aria-label={t("common.project")} data-testid="account-role-project" />
                  </Form.Item>
                  <Form.Item name={[field.name, "role"]} rules={[{ required: true, message: t("settings.required") }]}>
                    <Select style={{ width: 140 }} options={roleOptions} aria-label={t("common.role")} data-testid="account-role" />
                  </Form.Item>
                  <Button onClick={() => remove(field.name)}>{t("common.remove")}</Button>
                </Space>
              ))}
              <Button onClick={() => add({ project, role: "viewer" })} data-testid="account-role-add">
                {t("settings.accounts.addRole")}
              </Button>
            </div>
          )}
        </Form.List>
      </Form>
    </FormModal>
  );
}

/** Whether the signed-in account holds the personal-data right over every project (only then may it give it). */
function useCallerPii(): boolean {
  const me = useApi((signal) => unwrap(api.GET("/api/v1/auth/me", { signal })), []);
  return (me.data?.roles ?? []).some((r) => r.project === null && r.pii);
}

function GrantRole({ account, onClose, onDone }: { account: Account | null; onClose: () => void; onDone: () => void }) {
  const { t } = useTranslation();
  const { project, me } = useAuth();
  const [form] = Form.useForm<GrantForm & { pii: boolean }>();
  const projects = useProjectChoices();
  const chosen = Form.useWatch("project", form) ?? project;
  const piiHeld = (account?.grants ?? []).some((g) => g.grant === "pii" && (g.project ?? ALL_PROJECTS) === chosen);
  const callerPii = useCallerPii();
  const canPii = !!me?.workspaceAdmin && callerPii;

  const state = useFormSubmit(async (values: GrantForm & { pii: boolean }) => {
    if (!account) return;
    // One request: the role and the personal-data right change together or not at all.
    const body = { ...grantRequest(values), ...(canPii && values.pii !== piiHeld ? { pii: values.pii } : {}) };
    await unwrap(api.POST("/api/v1/accounts/{login}/grants", { params: { path: { login: account.login } }, body }));
    onDone();
  });

  // The switch shows what the account holds in the chosen project.
  useEffect(() => {
    if (account) form.setFieldsValue({ pii: piiHeld });
  }, [account, form, piiHeld]);

  const current = (p: string) => account?.roles.find((r) => (r.project ?? ALL_PROJECTS) === p)?.role ?? "none";
  return (
    <FormModal open={!!account} title={t("settings.accounts.grantTitle", { login: account?.login ?? "" })}
      okText={t("common.save")} okTestId="account-grant-submit" onClose={onClose} form={form} state={state}>
      <Form<GrantForm & { pii: boolean }>
        form={form}
        layout="vertical"
        onFinish={state.submit}
        data-testid="account-grant-form"
        initialValues={{ project, role: current(project), pii: false }}
        onValuesChange={(changed: Partial<GrantForm>) => {
          if (changed.project !== undefined) form.setFieldsValue({ role: current(changed.project) });
        }}
      >
        <Form.Item name="project" label={t("common.project")}>
          <Select options={projects} data-testid="account-grant-project" />
        </Form.Item>
        <Form.Item name="role" label={t("common.role")} extra={t("settings.accounts.roleHelp")}>
          <Select
            data-testid="account-grant-role"
            options={[
              ...ROLES.map((r) => ({ value: r, label: t(`common.roles.${r}`) })),
              { value: "none", label: t("settings.accounts.noRole") },
            ]}
          />
        </Form.Item>
        {me?.workspaceAdmin && (
          <Form.Item
            name="pii"
            label={t("settings.rights.pii")}
            valuePropName="checked"
            extra={canPii ? t("settings.accounts.piiHelp") : t("settings.accounts.piiNotHeld")}
          >
            <Switch disabled={!canPii} data-testid="account-grant-pii" />
          </Form.Item>
        )}
      </Form>
    </FormModal>
  );
}

function ResetPassword({ account, onClose, onDone }: { account: Account | null; onClose: () => void; onDone: () => void }) {
  const { t } = useTranslation();
  const [form] = Form.useForm<{ password: string }>();
  const state = useFormSubmit(async ({ password }: { password: string }) => {
    if (!account) return;
    await unwrap(api.POST("/api/v1/accounts/{login}/password", { params: { path: { login: account.login } }, body: { password } }));
    onDone();
  });
  return (
    <FormModal open={!!account} title={t("settings.accounts.resetTitle", { login: account?.login ?? "" })}
      okText={t("common.save")} okTestId="account-password-submit" onClose={onClose} form={form} state={state}>
      <Typography.Paragraph type="secondary">{t("settings.accounts.resetHelp")}</Typography.Paragraph>
      <Form form={form} layout="vertical" onFinish={state.submit}>
        <Form.Item name="password" label={t("settings.accounts.newPassword")} rules={passwordRules(t)}>
          <Input.Password autoComplete="new-password" data-testid="account-new-password" />
        </Form.Item>
      </Form>
    </FormModal>
  );
}

function Status({ account, zone }: { account: Account; zone: string }) {
  const { t } = useTranslation();
  if (account.disabled_at) return <Tag>{t("settings.accounts.disabled")}</Tag>;
  if (account.locked_until && new Date(account.locked_until.endsWith("Z") ? account.locked_until : `${account.locked_until}Z`) > new Date()) {
    return <Tag color="orange">{t("settings.accounts.lockedUntil", { at: formatInstant(account.locked_until, zone) })}</Tag>;
  }
  return <Tag color="green">{t("settings.accounts.active")}</Tag>;
}

export function AccountsTab() {
  const { t } = useTranslation();
  const { message } = App.useApp();
  const zone = useProjectZone();
  const [creating, setCreating] = useState(false);
  const [granting, setGranting] = useState<Account | null>(null);
  const [resetting, setResetting] = useState<Account | null>(null);
  const accounts = useApi((signal) => unwrap(api.GET("/api/v1/accounts", { signal })), []);

  const done = (text: string) => {
    message.success(text);
    accounts.reload();
  };
  const toggle = async (account: Account, enable: boolean) => {
    try {
      const path = { params: { path: { login: account.login } } };
      if (enable) await unwrap(api.POST("/api/v1/accounts/{login}/enable", path));
      else await unwrap(api.POST("/api/v1/accounts/{login}/disable", path));
      done(enable ? t("settings.accounts.enabledDone") : t("settings.accounts.disabledDone"));
    } catch (err) {
      message.error(err instanceof Error ? err.message : String(err));
    }
  };

  if (accounts.loading && !accounts.data) return <Loading />;
  if (accounts.error) return <ErrorState error={accounts.error} onRetry={accounts.reload} />;
  const scope = (p: string | null) => p ?? t("settings.allProjects");

  return (
    <Card
      size="small"
      title={t("settings.accounts.title")}
      extra={
        <Button type="primary" onClick={() => setCreating(true)} data-testid="account-create">
          {t("settings.accounts.create")}
        </Button>
      }
    >
      <Table<Account>
        data-testid="accounts-table"
        size="small"
        rowKey="login"
        dataSource={accounts.data ?? []}
        pagination={{ pageSize: 20, hideOnSinglePage: true }}
        locale={{ emptyText: <EmptyState>{t("settings.accounts.none")}</EmptyState> }}
        columns={[
          { title: t("settings.accounts.login"), dataIndex: "login", render: (v: string) => <Typography.Text strong>{v}</Typography.Text> },
          { title: t("settings.accounts.name"), dataIndex: "name" },
          {
            title: t("settings.accounts.roles"),
            dataIndex: "roles",
            render: (roles: Account["roles"]) =>
              roles.length ? roles.map((r) => (
                <Tag key={`${r.project}`} color={r.role === "admin" ? "blue" : undefined}>
                  {scope(r.project)}: {t(`common.roles.${r.role}`)}
                </Tag>
              )) : <Typography.Text type="secondary">{t("settings.accounts.noRoles")}</Typography.Text>,
          },
          {
            title: t("settings.rights.pii"),
            dataIndex: "grants",
            render: (grants: Account["grants"]) =>
              grants.filter((g) => g.grant === "pii").map((g) => <Tag color="red" key={`${g.project}`}>{scope(g.project)}</Tag>),
          },
          { title: t("common.status"), key: "status", render: (_, a) => <Status account={a} zone={zone} /> },
          { title: t("settings.accounts.passwordChanged"), dataIndex: "password_changed_at", render: (v: string) => formatInstant(v, zone) },
          {
            title: t("common.actions"),
            key: "actions",
            render: (_, a) => (
              <Space wrap>
                <Button size="small" onClick={() => setGranting(a)} data-testid="account-grant">
                  {t("settings.accounts.grant")}
                </Button>
                <Button size="small" onClick={() => setResetting(a)} data-testid="account-password-reset">
                  {t("settings.accounts.reset")}
                </Button>
                {a.disabled_at ? (
                  <Button size="small" onClick={() => void toggle(a, true)} data-testid="account-enable">
                    {t("settings.accounts.enable")}
                  </Button>
                ) : (
                  <Popconfirm
                    title={t("settings.accounts.disableConfirm", { login: a.login })}
                    onConfirm={() => void toggle(a, false)}
                    okText={t("settings.accounts.disable")}
                    cancelText={t("common.cancel")}
                  >
                    <Button size="small" danger data-testid="account-disable">
                      {t("settings.accounts.disable")}
                    </Button>
                  </Popconfirm>
                )}
              </Space>
            ),
          },
        ]}
      />
      <CreateAccount
        open={creating}
        onClose={() => setCreating(false)}
        onDone={() => {
          setCreating(false);
          done(t("settings.accounts.created"));
        }}
      />
      <GrantRole
        account={granting}
        onClose={() => setGranting(null)}
        onDone={() => {
          setGranting(null);
          done(t("common.saved"));
        }}
      />
      <ResetPassword
        account={resetting}
        onClose={() => setResetting(null)}
        onDone={() => {
          setResetting(null);
          done(t("settings.accounts.resetDone"));
        }}
      />
    </Card>
  );
}
