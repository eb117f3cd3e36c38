// One tile of a dashboard: its saved insight run (insights.run, served from the analysis cache when fresh) and
// drawn with the analyses area's chart builders; for a writer, the controls that move, resize and remove it.
import {
  ArrowDownOutlined, ArrowLeftOutlined, ArrowRightOutlined, ArrowUpOutlined, ColumnHeightOutlined,
  ColumnWidthOutlined, DeleteOutlined, ShrinkOutlined, VerticalAlignMiddleOutlined,
} from "@ant-design/icons";
import { Alert, Button, Card, Flex, Skeleton, Tooltip, Typography } from "antd";
import { useMemo } from "react";
import { useTranslation } from "react-i18next";
import { Link } from "react-router-dom";
import { api, unwrap } from "../../api/client";
import { Chart } from "../../components/Chart";
import { EmptyState } from "../../components/States";
import { useApi } from "../../lib/useApi";
import { KINDS, type Kind } from "../analyses/definition";
import { formatters } from "../analyses/format";
import { chartOption, hasData } from "../analyses/results/charts";
import type { ResultText } from "../analyses/results/text";
import type { Move } from "./grid";

export const ROW_HEIGHT = 80;
export const GAP = 12;
const HEADER = 48;

const CONTROLS: { move: Move; icon: React.ReactNode }[] = [
  { move: "left", icon: <ArrowLeftOutlined /> },
  { move: "right", icon: <ArrowRightOutlined /> },
  { move: "up", icon: <ArrowUpOutlined /> },
  { move: "down", icon: <ArrowDownOutlined /> },
  { move: "wider", icon: <ColumnWidthOutlined /> },
  { move: "narrower", icon: <ShrinkOutlined /> },
  { move: "taller", icon: <ColumnHeightOutlined /> },
  { move: "shorter", icon: <VerticalAlignMiddleOutlined /> },
];

export interface TileProps {
  index: number;
  insightId: number;
  name: string;
  kind: string;
  h: number;
  project: string;
  refresh: number;
  eventName: (name: string) => string;
  editable: boolean;
  busy: boolean;
  onMove: (move: Move) => void;
  onRemove: () => void;
}

export function DashboardTile(props: TileProps) {
  const { t, i18n } = useTranslation();
  const { index, insightId, project, refresh } = props;
  const run = useApi(
    (signal) =>
      unwrap(
        api.POST("/api/v1/insights/{insight_id}/run", {
          params: { path: { insight_id: insightId }, query: { project } },
          signal,
        }),
      ),
    [project, insightId, refresh],
  );
  const kind = (KINDS as readonly string[]).includes(props.kind) ? (props.kind as Kind) : null;
  const text: ResultText = useMemo(
    () => ({
      t: (key, values) => t(key, values ?? {}),
      event: props.eventName,
      fmt: formatters(i18n.language === "en" ? "en-US" : "zh-CN"),
    }),
    [t, i18n.language, props.eventName],
  );
  const option = useMemo(
    () => (run.data && kind && hasData(kind, run.data.result) ? chartOption(kind, run.data.result, text) : null),
    [run.data, kind, text],
  );
  const height = props.h * ROW_HEIGHT + (props.h - 1) * GAP - HEADER - 24;
  const link = `/analyses/insights/${insightId}?project=${encodeURIComponent(project)}`;

  return (
    <Card
      size="small"
      title={
        <Link to={link} title={props.name} data-testid={`dashboard-tile-${index}-open`}>
          {props.name}
        </Link>
      }
      extra={props.editable ? <TileControls {...props} /> : null}
      style={{ height: "100%" }}
      styles={{ body: { padding: 12 } }}
      data-testid={`dashboard-tile-${index}`}
    >
      {run.error ? (
        <Alert type="error" showIcon title={errorText(run.error)} data-testid="error" />
      ) : run.loading ? (
        <Flex vertical gap={8} aria-busy="true">
          <Skeleton active paragraph={{ rows: Math.max(1, Math.min(6, props.h - 1)) }} />
          <Button size="small" onClick={run.cancel} data-testid="cancel-query" style={{ alignSelf: "flex-start" }}>
            {t("common.cancel")}
          </Button>
        </Flex>
      ) : option ? (
        <Chart option={option} height={Math.max(height, 80)} testId={`dashboard-tile-${index}-chart`} />
      ) : kind ? (
        <EmptyState />
      ) : (
        <Typography.Text type="secondary">{t("dashboards.noChart")}</Typography.Text>
      )}
    </Card>
  );
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function TileControls(props: TileProps) {
  const { t } = useTranslation();
  return (
    <Flex gap={2} wrap>
      {CONTROLS.map(({ move, icon }) => (
        <Tooltip key={move} title={t(`dashboards.move.${move}`)}>
          <Button
            size="small"
            type="text"
            icon={icon}
            aria-label={t(`dashboards.move.${move}`)}
            disabled={props.busy}
            onClick={() => props.onMove(move)}
            data-testid={`dashboard-tile-${props.index}-${move}`}
          />
        </Tooltip>
      ))}
      <Tooltip title={t("dashboards.removeTile")}>
        <Button
          size="small"
          type="text"
          danger
          icon={<DeleteOutlined />}
          aria-label={t("dashboards.removeTile")}
          disabled={props.busy}
          onClick={props.onRemove}
          data-testid={`dashboard-tile-${props.index}-remove`}
        />
      </Tooltip>
    </Flex>
  );
}
