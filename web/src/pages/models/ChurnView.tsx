// Churn: risk tiers, the drivers (feature weights), and how well the probabilities hold: validation figures and
// the calibration plot (observed churn rate against predicted probability).
import { Alert, Card, Col, Row, Table, Typography } from "antd";
import { useMemo } from "react";
import { useTranslation } from "react-i18next";
import { Chart } from "../../components/Chart";
import { formats } from "./format";
import { Figures } from "./Figures";
import { calibrationOption, churnDrivers, driversOption, RISK_TIERS, type ChurnReport } from "./reports";

export function useFeatureLabel(): (name: string) => string {
  const { t, i18n } = useTranslation();
  return (name: string) => {
    if (name.startsWith("flag_")) return t("models.churn.flag", { flag: name.slice(5) });
    return i18n.exists(`models.churn.features.${name}`) ? t(`models.churn.features.${name}`) : name;
  };
}

export function ChurnView({ report }: { report: ChurnReport }) {
  const { t, i18n } = useTranslation();
  const f = formats(i18n.language);
  const featureLabel = useFeatureLabel();
  const v = report.validation ?? {};
  const tiers = RISK_TIERS.filter((k) => k in (report.tiers ?? {})).map((k) => ({ tier: k, users: report.tiers[k] }));
  const total = tiers.reduce((s, x) => s + x.users, 0);
  const drivers = churnDrivers(report.feature_importance);
  // eslint-disable-next-line react-hooks/exhaustive-deps
  const driversChart = useMemo(() => driversOption(drivers, featureLabel), [report.feature_importance, i18n.language]);
  const calibration = useMemo(
    () =>
      v.calibration?.length
        ? calibrationOption(v.calibration, {
            predicted: t("models.churn.predicted"), observed: t("models.churn.observed"), ideal: t("models.churn.ideal"),
          })
        : null,
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [v.calibration, i18n.language],
  );
  const [lowCut, highCut] = report.config?.thresholds ?? [];

  return (
    <>
      <Figures
        testId="churn-validation"
        items={[
          { label: t("models.churn.auc"), value: f.num(v.auc, 3) },
          { label: t("models.churn.prAuc"), value: f.num(v.pr_auc, 3) },
          { label: t("models.churn.brier"), value: f.num(v.brier, 3) },
          { label: t("models.churn.ece"), value: f.num(v.ece, 3) },
        ]}
      />
      <Typography.Paragraph type="secondary" style={{ marginTop: 8 }}>
        {t("models.churn.validatedOn", { users: f.int(v.users), rate: f.pct(v.positive_rate), lift: f.num(v.top_decile_lift, 2) })}
      </Typography.Paragraph>
      <Row gutter={[16, 16]}>
        <Col xs={24} lg={10}>
          <Card size="small" title={t("models.churn.tiers")}>
            <Table
              data-testid="churn-tiers"
              size="small"
              rowKey="tier"
              pagination={false}
              dataSource={tiers}
              columns={[
                { title: t("models.churn.tier"), dataIndex: "tier", render: (x: string) => t(`models.risk.${x}`) },
                { title: t("models.users"), dataIndex: "users", align: "right", render: (x: number) => f.int(x) },
                { title: t("models.share"), key: "share", align: "right", render: (_, r: { users: number }) => f.pct(total ? r.users / total : null) },
              ]}
            />
            {lowCut !== undefined && highCut !== undefined && (
              <Typography.Paragraph type="secondary" style={{ marginTop: 8 }}>
                {t("models.churn.thresholds", { low: f.pct(lowCut), high: f.pct(highCut) })}
              </Typography.Paragraph>
            )}
          </Card>
        </Col>
        <Col xs={24} lg={14}>
          <Card size="small" title={t("models.churn.drivers")} data-testid="churn-drivers">
            {drivers.length ? <Chart option={driversChart} height={300} /> : <Alert type="info" showIcon title={t("common.empty")} />}
          </Card>
        </Col>
      </Row>
      <Card size="small" title={t("models.churn.calibration")} style={{ marginTop: 16 }} data-testid="churn-calibration">
        {calibration ? <Chart option={calibration} height={320} testId="churn-calibration-chart" /> : <Alert type="info" showIcon title={t("models.churn.noCalibration")} />}
      </Card>
    </>
  );
}
