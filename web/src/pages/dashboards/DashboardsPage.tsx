// The dashboards area (placeholder until its page is built).
import { Typography } from "antd";
import { useTranslation } from "react-i18next";

export function DashboardsPage() {
  const { t } = useTranslation();
  return <Typography.Title level={3}>{t("common.nav.dashboards")}</Typography.Title>;
}
