// A result drawn: the kind's chart and a table of the same numbers, with the rows' "people behind this number"
// actions where the API can list them. Loading, computing (with a cancel), error and empty states included.
import { Alert, Button, Dropdown, Space, Table, Tag, Typography } from "antd";
import { useEffect, useMemo, useState } from "react";
import { useTranslation } from "react-i18next";
import { Chart } from "../../components/Chart";
import { EmptyState, ErrorState, Loading } from "../../components/States";
import type { Kind, PeopleTarget } from "./definition";
import { formatters } from "./format";
import { chartOption, hasData } from "./results/charts";
import { tableOf, type Row } from "./results/tables";
import type { ResultText } from "./results/text";
import type { QueryReply } from "./useQueryRun";

function Elapsed({ since }: { since: number }) {
  const { t } = useTranslation();
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 500);
    return () => clearInterval(timer);
  }, []);
  return (
    <Typography.Text type="secondary" data-testid="analysis-elapsed">
      {t("analyses.run.elapsed", { seconds: Math.max(0, Math.round((now - since) / 1000)) })}
    </Typography.Text>
  );
}

interface Props {
  kind: Kind;
  reply: QueryReply | undefined;
  error: unknown;
  running: boolean;
  startedAt: number | null;
  onCancel: () => void;
  onRetry: () => void;
  eventLabel: (name: string) => string;
  propertyLabel: (name: string, table?: string) => string;
  /** Set when the account may save segments: the rows then offer their people. */
  onPeople?: (target: PeopleTarget) => void;
}

function PeopleMenu({ row, onPeople }: { row: Row; onPeople: (target: PeopleTarget) => void }) {
  const { t } = useTranslation();
  if (!row.people?.length) return null;
  return (
    <Dropdown
      menu={{
        items: row.people.map((p, i) => ({ key: String(i), label: p.label })),
        onClick: ({ key }) => onPeople(row.people![Number(key)].target),
      }}
    >
      <Button size="small" data-testid={`analysis-row-people-${row.key}`}>{t("analyses.toSegment.rowAction")}</Button>
    </Dropdown>
  );
}

export function ResultView(props: Props) {
  const { kind, reply, error, running, startedAt, onCancel, onRetry, eventLabel, propertyLabel, onPeople } = props;
  const { t, i18n } = useTranslation();
  const text: ResultText = useMemo(
    () => ({
      t: (key, values) => t(key, values),
      event: eventLabel,
      property: (name, source) => propertyLabel(name, source === "user" ? "users" : "events"),
      fmt: formatters(i18n.language),
    }),
    [t, eventLabel, propertyLabel, i18n.language],
  );
  const view = useMemo(() => {
    if (!reply || reply.kind !== kind || !hasData(kind, reply.result)) return null;
    return { option: chartOption(kind, reply.result, text), table: tableOf(kind, reply.result, text) };
  }, [reply, kind, text]);

  if (running) {
    return (
      <div data-testid="analysis-computing">
        <Loading computing onCancel={onCancel} />
        <div style={{ textAlign: "center" }}>{startedAt && <Elapsed since={startedAt} />}</div>
      </div>
    );
  }
  if (error) return <ErrorState error={error} onRetry={onRetry} />;
  if (!reply) return <EmptyState>{t("analyses.run.notRun")}</EmptyState>;
  if (!view) return <EmptyState>{t("analyses.run.noData")}</EmptyState>;

  const columns = view.table.columns.map((c) => ({
    key: c.key,
    title: c.title,
    dataIndex: ["cells", c.key],
    align: c.numeric ? ("right" as const) : ("left" as const),
    fixed: c.key === view.table.columns[0].key ? ("left" as const) : undefined,
  }));
  if (onPeople && view.table.rows.some((r) => r.people?.length)) {
    columns.push({
      key: "_people", title: t("analyses.toSegment.column"), dataIndex: ["key"], align: "left", fixed: undefined,
      render: (_: unknown, row: Row) => <PeopleMenu row={row} onPeople={onPeople} />,
    } as (typeof columns)[number]);
  }
  const summary = (reply.result as { summary?: Record<string, string> }).summary;
  return (
    <Space orientation="vertical" style={{ width: "100%" }} size="middle">
      <Space wrap>
        {reply.cached && <Tag>{t("analyses.run.cached")}</Tag>}
        <Typography.Text type="secondary">
          {t("analyses.run.took", { ms: text.fmt.number(Math.round(reply.took_ms)) })}
        </Typography.Text>
      </Space>
      {(reply.warnings ?? []).map((w, i) => (
        <Alert key={i} type="warning" showIcon title={w} />
      ))}
      {summary && <Alert type="info" showIcon title={i18n.language === "en" ? summary.en : (summary.zh ?? summary.en)} />}
      <Chart option={view.option} height={kind === "paths" ? 420 : 340} testId="analysis-chart" />
      <Table<Row>
        data-testid="analysis-table"
        size="small"
        rowKey="key"
        columns={columns}
        dataSource={view.table.rows}
        pagination={view.table.rows.length > 50 ? { pageSize: 50 } : false}
        scroll={{ x: "max-content" }}
      />
    </Space>
  );
}
