// Preference: per dimension (category, price band, touchpoint…) how many users prefer each value, and the items
// bought together; activity: how many users are active and how often.
import { Card, Col, Row, Table } from "antd";
import { useTranslation } from "react-i18next";
import { Chart } from "../../components/Chart";
import { formats } from "./format";
import { Figures } from "./Figures";
import { topValues, type ActivityReport, type PreferenceReport } from "./reports";

type Rule = NonNullable<PreferenceReport["associations"]>["top"][number];

export function PreferenceView({ report }: { report: PreferenceReport }) {
  const { t, i18n } = useTranslation();
  const f = formats(i18n.language);
  const dimensionLabel = (d: string) => (i18n.exists(`models.preference.dimensions.${d}`) ? t(`models.preference.dimensions.${d}`) : d);
  const dimensions = Object.entries(report.dimensions ?? {});
  return (
    <>
      <Row gutter={[16, 16]} data-testid="preference-dimensions">
        {dimensions.map(([name, counts]) => {
          const values = topValues(counts);
          return (
            <Col key={name} xs={24} md={12} xl={8}>
              <Card size="small" title={dimensionLabel(name)}>
                <Chart
                  height={240}
                  testId={`preference-${name}`}
                  option={{
                    tooltip: { trigger: "axis" },
                    grid: { left: 8, right: 32, top: 8, bottom: 8, containLabel: true },
                    xAxis: { type: "value" },
                    yAxis: { type: "category", inverse: true, data: values.map(([v]) => v) },
                    series: [{ type: "bar", name: t("models.users"), data: values.map(([, n]) => n) }],
                  }}
                />
              </Card>
            </Col>
          );
        })}
      </Row>
      {report.associations && (
        <Card
          size="small"
          style={{ marginTop: 16 }}
          title={t("models.preference.associations", { rules: f.int(report.associations.rules) })}
        >
          <Table<Rule>
            data-testid="preference-rules"
            size="small"
            rowKey={(r) => `${r.item}-${r.also_item}`}
            pagination={false}
            dataSource={report.associations.top}
            columns={[
              { title: t("models.preference.item"), dataIndex: "item" },
              { title: t("models.preference.alsoItem"), dataIndex: "also_item" },
              { title: t("models.preference.baskets"), dataIndex: "baskets", align: "right", render: (v: number) => f.int(v) },
              { title: t("models.preference.confidence"), dataIndex: "confidence", align: "right", render: (v: number) => f.pct(v) },
              { title: t("models.preference.lift"), dataIndex: "lift", align: "right", render: (v: number) => f.num(v, 2) },
            ]}
          />
        </Card>
      )}
    </>
  );
}

export function ActivityView({ report }: { report: ActivityReport }) {
  const { t, i18n } = useTranslation();
  const f = formats(i18n.language);
  return (
    <Figures
      testId="activity-figures"
      items={[
        { label: t("models.activity.users"), value: f.int(report.users) },
        { label: t("models.activity.active"), value: `${f.int(report.active_users)} (${f.pct(report.users ? report.active_users / report.users : null)})` },
        { label: t("models.activity.lowFrequency"), value: f.int(report.low_frequency_users) },
        { label: t("models.activity.meanScore"), value: f.num(report.mean_score, 1) },
      ]}
    />
  );
}
