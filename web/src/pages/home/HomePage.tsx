// Home: the core metrics (DOMAIN §10–11: acquisition, health, preference, purchase behaviour) over a period, each
// beside a comparison period, with a sparkline and a link to its analysis. Loaded with the shell, so it stays
// light: sparklines are SVG (no chart library) and each card runs its own analysis, drawn as soon as it is back.
import { ReloadOutlined } from "@ant-design/icons";
import { Button, Col, Flex, Row, Select, Typography } from "antd";
import { useState } from "react";
import { useTranslation } from "react-i18next";
import { api, unwrap } from "../../api/client";
import { useAuth } from "../../auth/AuthContext";
import { EmptyState, ErrorState, Loading } from "../../components/States";
import { useApi } from "../../lib/useApi";
import { useUrlParam } from "../../lib/urlState";
import { MetricCard } from "./MetricCard";
import { COMPARISONS, PERIODS, todayIn, type Comparison } from "./metrics";

const DEFAULT_PERIOD = "30";

export function HomePage() {
  const { t } = useTranslation();
  const { project, me } = useAuth();
  // projects.show spans projects: an account with a role in some projects only may not read it (403).
  const wide = Boolean(me?.projects.some((p) => p.project === "*" && p.rights.includes("read")));
  const [periodRaw, setPeriod] = useUrlParam("period", DEFAULT_PERIOD);
  const [compareRaw, setCompare] = useUrlParam("compare", "previous");
  const [refresh, setRefresh] = useState(0);
  const period = (PERIODS as readonly number[]).includes(Number(periodRaw)) ? Number(periodRaw) : 30;
  const comparison: Comparison = (COMPARISONS as string[]).includes(compareRaw)
    ? (compareRaw as Comparison)
    : "previous";

  const info = useApi(
    (signal) =>
      wide
        ? unwrap(api.GET("/api/v1/projects/{name}", { params: { path: { name: project } }, signal }))
        : Promise.resolve(null),
    [project, wide],
  );
  const panels = useApi(
    (signal) =>
      unwrap(api.GET("/api/v1/dashboards/core-metrics", { params: { query: { project, last: period } }, signal })),
    [project, period],
  );
  // The project's today: from its time zone when its settings are readable (projects.show), else from the first
  // daily trend a card gets back; comparisons wait for it.
  const [seenToday, setSeenToday] = useState<string | null>(null);
  const today = info.data ? todayIn(info.data.timezone, new Date()) : info.error || !info.loading ? seenToday : null;
  const money = info.data ? (info.data.money_property ?? null) : undefined;

  return (
    <div data-testid="home-page">
      <Flex justify="space-between" align="center" wrap gap={12} style={{ marginBottom: 16 }}>
        <Typography.Title level={3} style={{ margin: 0 }}>
          {t("home.title")}
        </Typography.Title>
        <Flex gap={12} align="center" wrap>
          <Typography.Text type="secondary">{t("common.period")}</Typography.Text>
          <Select
            value={String(period)}
            onChange={setPeriod}
            options={PERIODS.map((n) => ({ value: String(n), label: t("home.lastDays", { count: n }) }))}
            style={{ width: 140 }}
            aria-label={t("common.period")}
            data-testid="home-period"
          />
          <Typography.Text type="secondary">{t("common.compareTo")}</Typography.Text>
          <Select
            value={comparison}
            onChange={setCompare}
            options={COMPARISONS.map((c) => ({ value: c, label: t(`home.compare.${c}`) }))}
            style={{ width: 160 }}
            aria-label={t("common.compareTo")}
            data-testid="home-compare"
          />
          <Button icon={<ReloadOutlined />} onClick={() => setRefresh((n) => n + 1)} data-testid="home-refresh">
            {t("common.refresh")}
          </Button>
        </Flex>
      </Flex>
      {panels.error ? (
        <ErrorState error={panels.error} onRetry={panels.reload} />
      ) : panels.loading || !panels.data ? (
        <Loading />
      ) : panels.data.length === 0 ? (
        <EmptyState />
      ) : (
        <Row gutter={[16, 16]} data-testid="home-metrics">
          {panels.data.map((panel) => (
            <Col key={panel.key} xs={24} sm={12} xl={8} xxl={6}>
              <MetricCard
                panel={panel}
                project={project}
                today={today}
                onToday={setSeenToday}
                money={money}
                comparison={comparison}
                refresh={refresh}
              />
            </Col>
          ))}
        </Row>
      )}
    </div>
  );
}
