// The collector's status: what the spool holds and how far the loader has read it, the last batch loaded, dead
// letters and the last error; it refreshes itself every few seconds while shown.
import { ReloadOutlined } from "@ant-design/icons";
import { Alert, Button, Descriptions, Flex, Tag, Typography } from "antd";
import { useEffect } from "react";
import { useTranslation } from "react-i18next";
import { api, unwrap } from "../../api/client";
import { ErrorState, Loading } from "../../components/States";
import { useAuth } from "../../auth/AuthContext";
import { useApi } from "../../lib/useApi";
import { readsWorkspace } from "./access";

const POLL_MS = 5000;

interface Position {
  segment: number;
  offset: number;
}
/** GET /api/v1/collector's reply (the schema leaves it open). */
export interface CollectorStatus {
  durable?: Position;
  committed?: Position;
  backlog_bytes?: number;
  loaded?: { received?: number; accepted?: number; rejected?: number; duplicates?: number; events?: number };
  batches?: number;
  dead_lettered?: number;
  last_error?: string | null;
}

export function CollectorTab() {
  const { t } = useTranslation();
  const { me } = useAuth();
  if (!readsWorkspace(me)) {
    return <Alert type="info" showIcon title={t("data.collector.workspaceOnly")} data-testid="collector-status" />;
  }
  return <CollectorStatusView />;
}

function CollectorStatusView() {
  const { t, i18n } = useTranslation();
  const status = useApi(
    async (signal) => (await unwrap(api.GET("/api/v1/collector", { signal }))) as CollectorStatus,
    [],
  );
  const { reload } = status;
  useEffect(() => {
    const timer = window.setInterval(reload, POLL_MS);
    return () => window.clearInterval(timer);
  }, [reload]);

  if (status.error && !status.data) return <ErrorState error={status.error} onRetry={reload} />;
  if (!status.data) return <Loading />;
  const s = status.data;
  const number = new Intl.NumberFormat(i18n.language === "en" ? "en-US" : "zh-CN");
  const n = (v: number | undefined) => (v === undefined ? "—" : number.format(v));
  const at = (p: Position | undefined) =>
    p ? t("data.collector.position", { segment: p.segment, offset: n(p.offset) }) : "—";
  const caughtUp = (s.backlog_bytes ?? 0) === 0;

  return (
    <div data-testid="collector-status">
      <Flex justify="space-between" align="center" style={{ marginBottom: 12 }}>
        <Flex gap={8} align="center">
          <Tag color={caughtUp ? "green" : "orange"} data-testid="collector-state">
            {caughtUp ? t("data.collector.caughtUp") : t("data.collector.loading")}
          </Tag>
          <Typography.Text type="secondary">
            {t("data.collector.autoRefresh", { seconds: POLL_MS / 1000 })}
          </Typography.Text>
        </Flex>
        <Button icon={<ReloadOutlined />} onClick={reload} loading={status.loading} data-testid="collector-refresh">
          {t("common.refresh")}
        </Button>
      </Flex>
      {s.last_error && (
        <Alert
          type="error"
          showIcon
          title={t("data.collector.lastError")}
          description={s.last_error}
          style={{ marginBottom: 12 }}
        />
      )}
      <Descriptions bordered size="small" column={{ xs: 1, md: 2 }}>
        <Descriptions.Item label={t("data.collector.backlog")}>{n(s.backlog_bytes)} B</Descriptions.Item>
        <Descriptions.Item label={t("data.collector.batches")}>{n(s.batches)}</Descriptions.Item>
        <Descriptions.Item label={t("data.collector.durable")}>{at(s.durable)}</Descriptions.Item>
        <Descriptions.Item label={t("data.collector.committed")}>{at(s.committed)}</Descriptions.Item>
        <Descriptions.Item label={t("data.collector.received")}>{n(s.loaded?.received)}</Descriptions.Item>
        <Descriptions.Item label={t("data.collector.accepted")}>{n(s.loaded?.accepted)}</Descriptions.Item>
        <Descriptions.Item label={t("data.collector.rejected")}>{n(s.loaded?.rejected)}</Descriptions.Item>
        <Descriptions.Item label={t("data.collector.duplicates")}>{n(s.loaded?.duplicates)}</Descriptions.Item>
        <Descriptions.Item label={t("data.collector.deadLettered")}>{n(s.dead_lettered)}</Descriptions.Item>
      </Descriptions>
    </div>
  );
}
