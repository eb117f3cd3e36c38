// The models area: one tab per user model (RFM, lifecycle, value, CLV, churn, preference, activity), each showing
// its latest stored report, with "run" (analyse right) re-computing it. The tab lives in the URL (?tab=).
import { Alert, Button, Card, Space, Tabs, Tooltip, Typography } from "antd";
import { useCallback, useEffect, useRef, useState } from "react";
import { useTranslation } from "react-i18next";
import { ApiError, api, unwrap } from "../../api/client";
import { useAuth } from "../../auth/AuthContext";
import { EmptyState, ErrorState, Loading } from "../../components/States";
import { useApi } from "../../lib/useApi";
import { useUrlParam } from "../../lib/urlState";
import { MODEL_TABS, tabOf, type ModelTab } from "./reports";
import { ModelView } from "./views";

interface Stored {
  model: string;
  run_date: string;
  model_version: string;
  created_at: string;
  report: Record<string, unknown>;
}

/** Re-computing one model: elapsed seconds while it runs, a cancel, and the model's error if it failed. */
function useModelRun(project: string, name: ModelTab, onDone: () => void) {
  const [running, setRunning] = useState(false);
  const [elapsed, setElapsed] = useState(0);
  const [error, setError] = useState<unknown>();
  const controller = useRef<AbortController | null>(null);

  useEffect(() => () => controller.current?.abort(), []);
  useEffect(() => {
    if (!running) return;
    const started = Date.now();
    const timer = window.setInterval(() => setElapsed(Math.round((Date.now() - started) / 1000)), 500);
    return () => window.clearInterval(timer);
  }, [running]);

  const run = useCallback(async () => {
    const ctrl = new AbortController();
    controller.current = ctrl;
    setRunning(true);
    setElapsed(0);
    setError(undefined);
    try {
      const reply = await unwrap(
        api.POST("/api/v1/models/run", { params: { query: { project, only: name } }, signal: ctrl.signal }),
      );
      const failed = (reply.models[name] as { error?: { code: string; message: string } } | undefined)?.error;
      if (failed) setError(new ApiError(400, failed));
      else onDone();
    } catch (err) {
      if (!ctrl.signal.aborted) setError(err);
    } finally {
      if (controller.current === ctrl) setRunning(false);
    }
  }, [project, name, onDone]);

  const cancel = useCallback(() => {
    controller.current?.abort();
    setRunning(false);
  }, []);
  return { run, cancel, running, elapsed, error };
}

function ModelPanel({ name }: { name: ModelTab }) {
  const { t } = useTranslation();
  const { project, can } = useAuth();
  // Which models have run is asked first, so a model never run is an empty state, not a refused request.
  const loaded = useApi<Stored | null>(async (signal) => {
    const runs = await unwrap(api.GET("/api/v1/models/runs", { params: { query: { project } }, signal }));
    if (!runs.find((r) => r.name === name)?.run_date) return null;
    return unwrap(api.GET("/api/v1/models/{name}/report", { params: { path: { name }, query: { project } }, signal }));
  }, [name, project]);
  const runner = useModelRun(project, name, loaded.reload);
  const notRun =
    (!loaded.loading && loaded.data === null) ||
    (loaded.error instanceof ApiError && loaded.error.code === "model_no_report");
  const allowed = can("analyse");

  const runButton = (
    <Tooltip title={allowed ? undefined : t("common.noRight")}>
      <Button
        type={notRun ? "primary" : "default"}
        onClick={() => void runner.run()}
        loading={runner.running}
        disabled={!allowed}
        data-testid="model-run"
      >
        {notRun ? t("models.runFirst") : t("models.rerun")}
      </Button>
    </Tooltip>
  );

  let body;
  if (runner.running) body = <Loading computing onCancel={runner.cancel} />;
  else if (loaded.loading && !loaded.data) body = <Loading />;
  else if (notRun) body = <EmptyState>{t("models.notRun", { model: t(`models.tabs.${name}`) })}</EmptyState>;
  else if (loaded.error) body = <ErrorState error={loaded.error} onRetry={loaded.reload} />;
  else if (loaded.data) body = <ModelView name={name} report={loaded.data.report} />;

  return (
    <Space orientation="vertical" size="middle" style={{ width: "100%" }} data-testid={`model-${name}`}>
      <Card size="small">
        <Space wrap style={{ width: "100%", justifyContent: "space-between" }}>
          <Typography.Text type="secondary" data-testid="model-run-date">
            {loaded.data
              ? t("models.runInfo", { date: loaded.data.run_date, version: loaded.data.model_version })
              : t(`models.about.${name}`)}
          </Typography.Text>
          <Space>
            {runner.running && (
              <Typography.Text data-testid="model-run-progress">
                {t("models.running", { seconds: runner.elapsed })}
              </Typography.Text>
            )}
            {runButton}
          </Space>
        </Space>
        {loaded.data && (
          <Typography.Paragraph type="secondary" style={{ margin: "8px 0 0" }}>
            {t(`models.about.${name}`)}
          </Typography.Paragraph>
        )}
      </Card>
      {runner.error !== undefined && (
        <Alert
          type="error"
          showIcon
          closable
          data-testid="model-run-error"
          title={t("models.runFailed")}
          description={runner.error instanceof Error ? runner.error.message : String(runner.error)}
        />
      )}
      {body}
    </Space>
  );
}

export function ModelsPage() {
  const { t } = useTranslation();
  const [rawTab, setTab] = useUrlParam("tab", "rfm");
  const tab = tabOf(rawTab);
  return (
    <div>
      <Typography.Title level={3} style={{ marginTop: 0 }}>
        {t("models.title")}
      </Typography.Title>
      <Tabs
        activeKey={tab}
        onChange={setTab}
        destroyOnHidden
        items={MODEL_TABS.map((name) => ({
          key: name,
          label: <span data-testid={`models-tab-${name}`}>{t(`models.tabs.${name}`)}</span>,
          children: <ModelPanel name={name} />,
        }))}
      />
    </div>
  );
}
