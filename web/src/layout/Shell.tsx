// The frame of every signed-in page: the menu of areas, the project, the language, the account.
import {
  AppstoreOutlined, BarChartOutlined, DashboardOutlined, DatabaseOutlined, ExperimentOutlined, HomeOutlined,
  SettingOutlined, TeamOutlined,
} from "@ant-design/icons";
import { Button, Dropdown, Layout, Menu, Segmented, Select, Space, Typography } from "antd";
import { useEffect } from "react";
import { useTranslation } from "react-i18next";
import { Outlet, useLocation, useNavigate, useSearchParams } from "react-router-dom";
import { useAuth } from "../auth/AuthContext";
import { LANGUAGES, setLanguage, type Language } from "../i18n";

const AREAS = [
  { key: "/", icon: <HomeOutlined />, label: "home" },
  { key: "/analyses", icon: <BarChartOutlined />, label: "analyses" },
  { key: "/dashboards", icon: <DashboardOutlined />, label: "dashboards" },
  { key: "/data", icon: <DatabaseOutlined />, label: "data" },
  { key: "/users", icon: <TeamOutlined />, label: "users" },
  { key: "/segments", icon: <AppstoreOutlined />, label: "segments" },
  { key: "/models", icon: <ExperimentOutlined />, label: "models" },
  { key: "/settings", icon: <SettingOutlined />, label: "settings" },
] as const;

export function areaOf(pathname: string): string {
  const found = AREAS.filter((a) => a.key !== "/").find((a) => pathname === a.key || pathname.startsWith(a.key + "/"));
  return found ? found.key : "/";
}

export function Shell() {
  const { t, i18n } = useTranslation();
  const { me, project, setProject, signOut } = useAuth();
  const navigate = useNavigate();
  const location = useLocation();
  const [params, setParams] = useSearchParams();

  // The project is part of every deep link.
  useEffect(() => {
    const inUrl = params.get("project");
    if (inUrl && inUrl !== project) setProject(inUrl);
    else if (!inUrl) {
      const copy = new URLSearchParams(params);
      copy.set("project", project);
      setParams(copy, { replace: true });
    }
  }, [params, project, setProject, setParams]);

  const projects = (me?.projects ?? []).map((p) => p.project).filter((p) => p !== "*");
  const choices = Array.from(new Set([project, ...projects]));
  const role = me?.projects.find((p) => p.project === project) ?? me?.projects.find((p) => p.project === "*");

  return (
    <Layout style={{ minHeight: "100vh" }}>
      <Layout.Sider breakpoint="lg" collapsedWidth={56} theme="light" width={208}>
        <div style={{ padding: "16px 20px", fontWeight: 600, fontSize: 18 }}>{t("common.appName")}</div>
        <Menu
          mode="inline"
          selectedKeys={[areaOf(location.pathname)]}
          items={AREAS.map((a) => ({ key: a.key, icon: a.icon, label: t(`common.nav.${a.label}`) }))}
          onClick={({ key }) => navigate({ pathname: key, search: `?project=${encodeURIComponent(project)}` })}
          data-testid="nav"
        />
      </Layout.Sider>
      <Layout>
        <Layout.Header
          style={{ background: "#fff", display: "flex", justifyContent: "flex-end", alignItems: "center", gap: 16 }}
        >
          <Space>
            <Typography.Text type="secondary">{t("common.project")}</Typography.Text>
            <Select
              value={project}
              style={{ minWidth: 140 }}
              options={choices.map((p) => ({ value: p, label: p }))}
              onChange={(value: string) => {
                setProject(value);
                const copy = new URLSearchParams(params);
                copy.set("project", value);
                setParams(copy);
              }}
              data-testid="project-select"
              aria-label={t("common.project")}
            />
          </Space>
          <Segmented<Language>
            value={i18n.language as Language}
            options={LANGUAGES.map((l) => ({ value: l, label: l === "en" ? "EN" : "中文" }))}
            onChange={(value) => setLanguage(value)}
            data-testid="language"
            aria-label={t("common.language")}
          />
          <Dropdown
            menu={{
              items: [
                { key: "role", label: role ? t(`common.roles.${role.role}`, { defaultValue: role.role }) : "", disabled: true },
                { key: "out", label: t("common.signOut"), onClick: () => void signOut().then(() => navigate("/login")) },
              ],
            }}
          >
            <Button type="text" data-testid="account-menu">
              {t("common.signedInAs", { name: me?.name ?? "" })}
            </Button>
          </Dropdown>
        </Layout.Header>
        <Layout.Content style={{ margin: 24 }}>
          <Outlet />
        </Layout.Content>
      </Layout>
    </Layout>
  );
}
