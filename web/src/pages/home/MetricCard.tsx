// One core metric: its headline over the period, the change against the comparison period, a sparkline, and the
// link that opens its analysis. Its two analyses run as soon as the card shows; a long one can be cancelled.
import { ArrowDownOutlined, ArrowUpOutlined } from "@ant-design/icons";
import { Alert, Button, Card, Flex, Skeleton, Tag, Typography } from "antd";
import { useEffect, useMemo } from "react";
import { useTranslation } from "react-i18next";
import { Link } from "react-router-dom";
import { api, unwrap } from "../../api/client";
import type { components } from "../../api/schema";
import { useApi } from "../../lib/useApi";
import { Sparkline } from "./Sparkline";
import {
  analysisLink, change, comparisonDefinition, formatChange, formatValue, headline, todayFromResult, type Comparison,
} from "./metrics";

type Panel = components["schemas"]["Panel"];
type Json = Record<string, unknown>;

function newQueryId(key: string): string {
  return `home-${key}-${Math.random().toString(36).slice(2, 10)}`;
}

/** query.run of `definition` (null: nothing to run), cancellable on the server by its query id. */
function useRun(project: string, definition: Json | null, key: string, refresh: number) {
  const id = useMemo(() => newQueryId(key), [key]);
  const text = JSON.stringify(definition);
  const run = useApi(
    (signal) =>
      definition === null
        ? Promise.resolve(null)
        : unwrap(
            api.POST("/api/v1/query", {
              body: { project, definition, query_id: id, explain: false, timeout: 120, use_cache: true },
              signal,
            }),
          ),
    [project, text, refresh],
  );
  const cancel = () => {
    run.cancel();
    void api.DELETE("/api/v1/query/{query_id}", { params: { path: { query_id: id }, query: { project } } }).catch(() => undefined);
  };
  return { ...run, cancel };
}

export function MetricCard(props: {
  panel: Panel;
  project: string;
  today: string | null;
  onToday: (today: string) => void;
  money: string | null | undefined;
  comparison: Comparison;
  refresh: number;
}) {
  const { panel, project, today, money, comparison, refresh, onToday } = props;
  const { t, i18n } = useTranslation();
  const locale = i18n.language === "en" ? "en-US" : "zh-CN";
  const title = i18n.language === "en" ? panel.title_en : panel.title_zh;
  const definition = panel.definition as Json;
  const now = useRun(project, definition, panel.key, refresh);
  // The comparison runs once the headline is back: the headlines of every card come first.
  const before = now.data && today ? comparisonDefinition(definition, comparison, today) : null;
  const seen = now.data ? todayFromResult(definition, now.data.result) : null;
  useEffect(() => {
    if (seen) onToday(seen);
  }, [seen, onToday]);
  const then = useRun(project, before, panel.key + "-cmp", refresh);

  const current = headline(definition, now.data?.result, money);
  const previous = then.data ? headline(definition, then.data.result, money) : null;
  const delta = previous ? change(current.value, previous.value, current.format) : null;
  const unit = current.format === "rate" || current.format === "percent" ? "pp" : "relative";

  return (
    <Card
      size="small"
      title={title}
      extra={
        <Link to={analysisLink(definition, project)} data-testid={`home-metric-${panel.key}-open`}>
          {t("home.openAnalysis")}
        </Link>
      }
      data-testid={`home-metric-${panel.key}`}
      styles={{ body: { minHeight: 132 } }}
    >
      {now.error ? (
        <Alert type="error" showIcon title={errorText(now.error)} data-testid="error" />
      ) : now.loading ? (
        <Flex vertical gap={8} aria-busy="true">
          <Skeleton active title={false} paragraph={{ rows: 2 }} />
          <Button
            size="small"
            type="link"
            onClick={() => (now.cancel(), then.cancel())}
            style={{ alignSelf: "flex-start", padding: 0 }}
            data-testid="cancel-query"
          >
            {t("common.cancel")}
          </Button>
        </Flex>
      ) : !now.data ? (
        <Flex vertical gap={8} align="flex-start">
          <Typography.Text type="secondary">{t("home.cancelled")}</Typography.Text>
          <Button size="small" onClick={now.reload} data-testid="metric-retry">
            {t("common.retry")}
          </Button>
        </Flex>
      ) : (
        <Flex justify="space-between" align="flex-end" gap={8}>
          <Flex vertical gap={4}>
            <Typography.Text type="secondary">{t(`home.measure.${current.measure}`)}</Typography.Text>
            <span style={{ fontSize: 26, fontWeight: 600 }} data-testid="metric-value">
              {formatValue(current.value, current.format, locale)}
            </span>
            <ChangeLine
              loading={then.loading || (comparison !== "none" && !then.data && !then.error)}
              failed={Boolean(then.error)}
              delta={delta}
              unit={unit}
              text={
                previous && delta !== null
                  ? t("home.comparedWith", { value: formatValue(previous.value, previous.format, locale) })
                  : null
              }
              formatted={delta === null ? "" : formatChange(delta, current.format, locale)}
              shown={comparison !== "none"}
            />
          </Flex>
          <Sparkline values={current.spark} label={t("home.sparkline", { name: title })} />
        </Flex>
      )}
    </Card>
  );
}

function arrow(delta: number) {
  if (delta > 0) return <ArrowUpOutlined />;
  return delta < 0 ? <ArrowDownOutlined /> : undefined;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function ChangeLine(props: {
  shown: boolean;
  loading: boolean;
  failed: boolean;
  delta: number | null;
  unit: "pp" | "relative";
  formatted: string;
  text: string | null;
}) {
  const { t } = useTranslation();
  if (!props.shown) return null;
  if (props.loading) return <Typography.Text type="secondary">{t("home.comparing")}</Typography.Text>;
  if (props.failed || props.delta === null) {
    return <Typography.Text type="secondary">{t("home.noComparison")}</Typography.Text>;
  }
  const up = props.delta > 0;
  const label = props.unit === "pp" ? t("home.pp", { value: props.formatted }) : props.formatted;
  return (
    <Flex gap={6} align="center" data-testid="metric-change">
      <Tag color={props.delta === 0 ? "default" : up ? "green" : "red"} icon={arrow(props.delta)}>
        {label}
      </Tag>
      <Typography.Text type="secondary" style={{ fontSize: 12 }}>
        {props.text}
      </Typography.Text>
    </Flex>
  );
}
