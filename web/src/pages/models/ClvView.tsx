// CLV: the summary of the fitted purchase model (which one and why), the customers' CLV distribution, and the
// holdout check of each candidate model (predicted against actual purchases per decile).
import { Alert, Card, Col, Descriptions, Row, Table, Typography } from "antd";
import { useMemo } from "react";
import { useTranslation } from "react-i18next";
import { Chart } from "../../components/Chart";
import { formats } from "./format";
import { Figures } from "./Figures";
import { clvBins, decilesOption, histogramOption, type ClvCandidate, type ClvReport } from "./reports";

export function ClvView({ report }: { report: ClvReport }) {
  const { t, i18n } = useTranslation();
  const f = formats(i18n.language);
  const bins = clvBins(report.distribution);
  const chosen = report.choice?.model ?? report.transaction_model?.name ?? "";
  const candidates = Object.entries(report.validation?.candidates ?? {}).map(([name, c]) => ({ name, ...c }));
  const chosenCandidate = candidates.find((c) => c.name === chosen);
  const histogram = useMemo(
    () => histogramOption(bins, (v) => f.num(v, 0), t("models.users")),
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [report.distribution, i18n.language],
  );
  const deciles = useMemo(
    () =>
      chosenCandidate
        ? decilesOption(chosenCandidate, {
            predicted: t("models.clv.predicted"), actual: t("models.clv.actual"), decile: t("models.clv.decile"),
          })
        : null,
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [chosenCandidate, i18n.language],
  );
  const mean = report.total_clv !== undefined && report.customers ? report.total_clv / report.customers : null;

  return (
    <>
      <Figures
        testId="clv-summary"
        items={[
          { label: t("models.clv.customers"), value: f.int(report.customers) },
          { label: t("models.clv.total"), value: f.money(report.total_clv) },
          { label: t("models.clv.mean"), value: f.money(mean) },
          { label: t("models.clv.pAlive"), value: f.pct(report.mean_p_alive) },
        ]}
      />
      <Card size="small" style={{ marginTop: 16 }} title={t("models.clv.model")}>
        <Descriptions size="small" column={{ xs: 1, md: 2 }}>
          <Descriptions.Item label={t("models.clv.chosen")}>
            <Typography.Text code>{chosen}</Typography.Text>
            {report.choice?.mode && ` (${report.choice.mode})`}
          </Descriptions.Item>
          <Descriptions.Item label={t("models.clv.horizon")}>
            {t("models.days", { n: f.int(report.horizon_days) })}
          </Descriptions.Item>
          <Descriptions.Item label={t("models.clv.expectedPurchases")}>{f.num(report.expected_purchases_total, 0)}</Descriptions.Item>
          <Descriptions.Item label={t("models.clv.expectedValue")}>{f.money(report.expected_value_total)}</Descriptions.Item>
          {report.choice?.reason && (
            <Descriptions.Item label={t("models.clv.reason")} span={2}>
              {report.choice.reason}
            </Descriptions.Item>
          )}
        </Descriptions>
      </Card>
      <Card size="small" title={t("models.clv.distribution")} style={{ marginTop: 16 }} data-testid="clv-histogram">
        {bins.length ? <Chart option={histogram} testId="clv-histogram-chart" /> : <Alert type="info" showIcon title={t("models.clv.noDistribution")} />}
      </Card>
      {candidates.length > 0 && (
        <Row gutter={[16, 16]} style={{ marginTop: 16 }}>
          <Col xs={24} lg={12}>
            <Card size="small" title={t("models.clv.validation", { days: f.num(report.validation?.holdout_days, 0) })}>
              <Table<ClvCandidate & { name: string }>
                data-testid="clv-candidates"
                size="small"
                rowKey="name"
                pagination={false}
                dataSource={candidates}
                columns={[
                  {
                    title: t("models.clv.candidate"),
                    dataIndex: "name",
                    render: (v: string) => (v === chosen ? <strong>{v} ✓</strong> : v),
                  },
                  { title: t("models.clv.decileError"), dataIndex: "decile_error", align: "right", render: (v: number) => f.pct(v) },
                  { title: t("models.clv.auc"), dataIndex: "p_alive_auc_bought_again", align: "right", render: (v: number) => f.num(v, 3) },
                ]}
              />
            </Card>
          </Col>
          <Col xs={24} lg={12}>
            <Card size="small" title={t("models.clv.deciles", { model: chosen })}>
              {deciles ? <Chart option={deciles} height={280} testId="clv-deciles" /> : <Alert type="info" showIcon title={t("common.empty")} />}
            </Card>
          </Col>
        </Row>
      )}
    </>
  );
}
