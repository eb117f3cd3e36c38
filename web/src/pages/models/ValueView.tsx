// Value: the three tiers (users and their share of the value score) and the value jump — which behaviours tell
// customers who reached the next tier from those stuck below it.
import { Alert, Card, Col, Row, Table, Typography } from "antd";
import { useMemo } from "react";
import { useTranslation } from "react-i18next";
import { Chart } from "../../components/Chart";
import { formats } from "./format";
import { Figures } from "./Figures";
import { tiersOption, VALUE_TIERS, type ValueJumpBehaviour, type ValueReport } from "./reports";

const PALETTE = { high: "#1f6feb", medium: "#79a8f5", low: "#d0def9" };

export function useBehaviourLabel(): (name: string) => string {
  const { t, i18n } = useTranslation();
  return (name: string) => {
    if (name.startsWith("events:")) return t("models.value.eventCount", { event: name.slice(7) });
    return i18n.exists(`models.value.behaviours.${name}`) ? t(`models.value.behaviours.${name}`) : name;
  };
}

export function ValueView({ report }: { report: ValueReport }) {
  const { t, i18n } = useTranslation();
  const f = formats(i18n.language);
  const behaviourLabel = useBehaviourLabel();
  const tiers = VALUE_TIERS.filter((k) => report.tiers?.[k]).map((k) => ({ tier: k, ...report.tiers[k] }));
  const pie = useMemo(
    () => tiersOption(tiers.map((x) => [t(`models.tiers.${x.tier}`), x.users]), {
      [t("models.tiers.high")]: PALETTE.high, [t("models.tiers.medium")]: PALETTE.medium, [t("models.tiers.low")]: PALETTE.low,
    }),
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [report.tiers, i18n.language],
  );
  const jump = report.value_jump;

  return (
    <>
      <Figures
        items={[
          { label: t("models.value.customers"), value: f.int(report.customers) },
          ...tiers.map((x) => ({ label: t(`models.tiers.${x.tier}`), value: f.int(x.users) })),
        ]}
      />
      <Row gutter={[16, 16]} style={{ marginTop: 16 }}>
        <Col xs={24} lg={12}>
          <Card size="small" title={t("models.value.tiers")}>
            <Table
              data-testid="value-tiers"
              size="small"
              rowKey="tier"
              pagination={false}
              dataSource={tiers}
              columns={[
                { title: t("models.value.tier"), dataIndex: "tier", render: (v: string) => t(`models.tiers.${v}`) },
                { title: t("models.users"), dataIndex: "users", align: "right", render: (v: number) => f.int(v) },
                { title: t("models.value.scoreShare"), dataIndex: "score_share", align: "right", render: (v: number) => f.pct(v) },
              ]}
            />
            {report.config?.expression && (
              <Typography.Paragraph type="secondary" style={{ marginTop: 8 }}>
                {t("models.value.expression")}: <Typography.Text code>{report.config.expression}</Typography.Text>
              </Typography.Paragraph>
            )}
          </Card>
        </Col>
        <Col xs={24} lg={12}>
          <Card size="small" title={t("models.value.tierChart")}>
            <Chart option={pie} height={260} testId="value-tiers-chart" />
          </Card>
        </Col>
      </Row>
      <Card size="small" title={t("models.value.jump")} style={{ marginTop: 16 }} data-testid="value-jump">
        {!jump ? (
          <Alert type="info" showIcon title={t("models.value.noJump")} />
        ) : "error" in jump ? (
          <Alert type="warning" showIcon title={t("models.value.jumpUnavailable")} description={jump.error.message} />
        ) : (
          <>
            <Typography.Paragraph type="secondary">
              {t("models.value.jumpGroups", { reached: f.int(jump.reached_users), stuck: f.int(jump.stuck_users) })}
            </Typography.Paragraph>
            <Table<ValueJumpBehaviour>
              size="small"
              rowKey="behaviour"
              pagination={{ pageSize: 10, hideOnSinglePage: true }}
              dataSource={jump.behaviours}
              columns={[
                { title: t("models.value.behaviour"), dataIndex: "behaviour", render: (v: string) => behaviourLabel(v) },
                { title: t("models.value.meanReached"), dataIndex: "mean_reached", align: "right", render: (v: number) => f.num(v) },
                { title: t("models.value.meanStuck"), dataIndex: "mean_stuck", align: "right", render: (v: number) => f.num(v) },
                { title: t("models.value.stdDiff"), dataIndex: "std_diff", align: "right", render: (v: number) => f.num(v) },
                {
                  title: t("models.value.qValue"),
                  dataIndex: "q_value",
                  align: "right",
                  render: (v: number) => (v < 0.001 ? "< 0.001" : f.num(v, 3)),
                },
              ]}
            />
          </>
        )}
      </Card>
    </>
  );
}
