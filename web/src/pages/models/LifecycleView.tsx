// Lifecycle: users per stage, and the flows between stages from the previous run to this one (a Sankey).
import { Alert, Card, Col, Row, Table, Typography } from "antd";
import { useMemo } from "react";
import { useTranslation } from "react-i18next";
import { Chart } from "../../components/Chart";
import { formats } from "./format";
import { LIFECYCLE_STAGES, sankeyData, sankeyOption, stagesOption, transitionMatrix, type LifecycleReport } from "./reports";

export function useStageLabel(): (stage: string) => string {
  const { t, i18n } = useTranslation();
  return (stage: string) => (i18n.exists(`models.stages.${stage}`) ? t(`models.stages.${stage}`) : stage);
}

export function LifecycleView({ report }: { report: LifecycleReport }) {
  const { t, i18n } = useTranslation();
  const f = formats(i18n.language);
  const label = useStageLabel();
  const stages = report.stages ?? {};
  const rows = [...LIFECYCLE_STAGES.filter((s) => s in stages), ...Object.keys(stages).filter((s) => !LIFECYCLE_STAGES.includes(s as never))];
  // eslint-disable-next-line react-hooks/exhaustive-deps
  const bars = useMemo(() => stagesOption(stages, label), [stages, i18n.language]);
  const matrix = useMemo(() => transitionMatrix(report), [report]);
  // eslint-disable-next-line react-hooks/exhaustive-deps
  const sankey = useMemo(() => (matrix ? sankeyData(matrix, label) : null), [matrix, i18n.language]);
  const note = report.transitions_note && (i18n.language === "en" ? report.transitions_note.en : report.transitions_note.zh);

  return (
    <>
      <Row gutter={[16, 16]}>
        <Col xs={24} lg={10}>
          <Card size="small" title={t("models.lifecycle.stages")}>
            <Table
              data-testid="lifecycle-table"
              size="small"
              rowKey="stage"
              pagination={false}
              dataSource={rows.map((stage) => ({ stage, users: stages[stage] }))}
              columns={[
                { title: t("models.lifecycle.stage"), dataIndex: "stage", render: (s: string) => label(s) },
                { title: t("models.users"), dataIndex: "users", align: "right", render: (v: number) => f.int(v) },
                {
                  title: t("models.share"),
                  key: "share",
                  align: "right",
                  render: (_, r: { users: number }) => f.pct(report.users ? r.users / report.users : null),
                },
              ]}
              summary={() => (
                <Table.Summary.Row>
                  <Table.Summary.Cell index={0}>{t("models.total")}</Table.Summary.Cell>
                  <Table.Summary.Cell index={1} align="right">{f.int(report.users)}</Table.Summary.Cell>
                  <Table.Summary.Cell index={2} />
                </Table.Summary.Row>
              )}
            />
          </Card>
        </Col>
        <Col xs={24} lg={14}>
          <Card size="small" title={t("models.lifecycle.stageChart")}>
            <Chart option={bars} testId="lifecycle-stages" />
          </Card>
        </Col>
      </Row>
      <Card size="small" title={t("models.lifecycle.flows")} style={{ marginTop: 16 }} data-testid="lifecycle-sankey">
        {sankey && sankey.links.length > 0 ? (
          <>
            <Typography.Paragraph type="secondary">
              {t("models.lifecycle.flowsBetween", { from: matrix?.from_date, to: matrix?.to_date })}
            </Typography.Paragraph>
            <Chart option={sankeyOption(sankey)} height={420} testId="lifecycle-sankey-chart" />
          </>
        ) : (
          <Alert type="info" showIcon title={note || t("models.lifecycle.noFlows")} />
        )}
      </Card>
    </>
  );
}
