// RFM: the 8 median-split classes (table and bars) and the 5×5×5 quintile cube as one heat map per R score.
import { Alert, Card, Col, Row, Table } from "antd";
import { useMemo } from "react";
import { useTranslation } from "react-i18next";
import { Chart } from "../../components/Chart";
import { formats } from "./format";
import { Figures } from "./Figures";
import { cubeCells, cubeSliceOption, rfmBarOption, type RfmClass, type RfmReport } from "./reports";

export function RfmView({ report }: { report: RfmReport }) {
  const { t, i18n } = useTranslation();
  const f = formats(i18n.language);
  const classes = report.classes ?? [];
  const cells = useMemo(() => cubeCells(report.cube), [report.cube]);
  const max = Math.max(0, ...cells.map((c) => c.users));
  const bar = useMemo(() => rfmBarOption(classes, i18n.language, t("models.users")), [classes, i18n.language, t]);

  return (
    <>
      <Figures
        items={[
          { label: t("models.rfm.customers"), value: f.int(report.customers) },
          { label: t("models.rfm.medianRecency"), value: t("models.days", { n: f.num(report.medians?.recency_days, 1) }) },
          { label: t("models.rfm.medianFrequency"), value: f.num(report.medians?.frequency, 1) },
          { label: t("models.rfm.medianMonetary"), value: f.money(report.medians?.monetary) },
        ]}
      />
      <Row gutter={[16, 16]} style={{ marginTop: 16 }}>
        <Col xs={24} lg={12}>
          <Card size="small" title={t("models.rfm.classes")}>
            <Table<RfmClass>
              data-testid="rfm-table"
              size="small"
              rowKey="class"
              pagination={false}
              dataSource={classes}
              columns={[
                { title: t("models.rfm.code"), dataIndex: "class", width: 80 },
                { title: t("models.rfm.class"), key: "name", render: (_, c) => (i18n.language === "en" ? c.en : c.zh) },
                { title: t("models.users"), dataIndex: "users", align: "right", render: (v: number) => f.int(v) },
                {
                  title: t("models.share"),
                  key: "share",
                  align: "right",
                  render: (_, c) => f.pct(report.customers ? c.users / report.customers : null),
                },
              ]}
            />
          </Card>
        </Col>
        <Col xs={24} lg={12}>
          <Card size="small" title={t("models.rfm.classChart")}>
            <Chart option={bar} testId="rfm-chart" />
          </Card>
        </Col>
      </Row>
      <Card size="small" title={t("models.rfm.cube")} style={{ marginTop: 16 }} data-testid="rfm-cube">
        {cells.length === 0 ? (
          <Alert type="info" showIcon title={t("models.rfm.noCube")} />
        ) : (
          <Row gutter={[8, 8]}>
            {[5, 4, 3, 2, 1].map((r) => (
              <Col key={r} xs={24} md={12} xl={8}>
                <Chart
                  height={260}
                  testId={`rfm-cube-r${r}`}
                  option={cubeSliceOption(cells, r, max, {
                    title: t("models.rfm.slice", { r }),
                    f: t("models.rfm.fScore"),
                    m: t("models.rfm.mScore"),
                  })}
                />
              </Col>
            ))}
          </Row>
        )}
      </Card>
    </>
  );
}
