// Import a file of events, users or items (.jsonl, .csv, .parquet, optionally .gz) through the server: the upload
// and the import run in one request, shown with the time passed and the service's jobs beside it; then what the
// import did (received, accepted, rejected with the reasons in the rejects tab). Needs the write right.
import { InboxOutlined } from "@ant-design/icons";
import {
  Alert, Button, Descriptions, Flex, Form, Input, InputNumber, Progress, Select, Table, Tag, Typography, Upload,
} from "antd";
import { useEffect, useRef, useState } from "react";
import { useTranslation } from "react-i18next";
import { api, unwrap } from "../../api/client";
import type { components } from "../../api/schema";
import { useAuth } from "../../auth/AuthContext";
import { EmptyState, ErrorState } from "../../components/States";
import { useApi } from "../../lib/useApi";
import { apiTime } from "../../lib/apiTime";
import { useUrlParam } from "../../lib/urlState";
import { readsWorkspace } from "./access";
import { mappingParam, safeFilename } from "./upload";

type Imported = components["schemas"]["ImportedByServer"];
type JobRun = components["schemas"]["JobRunOut"];
const KINDS = ["events", "users", "items"] as const;
type Kind = (typeof KINDS)[number];
const JOB_STATUSES = ["running", "succeeded", "failed", "skipped"];

export function ImportTab() {
  const { t } = useTranslation();
  const { project, can, me } = useAuth();
  const [rawKind, setKind] = useUrlParam("kind", "events");
  const kind: Kind = (KINDS as readonly string[]).includes(rawKind) ? (rawKind as Kind) : "events";
  const [file, setFile] = useState<File | null>(null);
  const [mapping, setMapping] = useState("");
  const [maxPastDays, setMaxPastDays] = useState<number | null>(null);
  const [started, setStarted] = useState<number | null>(null);
  const [elapsed, setElapsed] = useState(0);
  const [done, setDone] = useState<Imported | null>(null);
  const [error, setError] = useState<unknown>(null);
  const controller = useRef<AbortController | null>(null);
  const writer = can("write");
  const mappingValue = mappingParam(mapping);
  const running = started !== null;

  useEffect(() => {
    if (started === null) return;
    const timer = window.setInterval(() => setElapsed((Date.now() - started) / 1000), 500);
    return () => window.clearInterval(timer);
  }, [started]);
  useEffect(() => () => controller.current?.abort(), []);

  const submit = async () => {
    if (!file || mappingValue === null) return;
    const ctrl = new AbortController();
    controller.current = ctrl;
    setStarted(Date.now());
    setElapsed(0);
    setDone(null);
    setError(null);
    try {
      const reply = await unwrap(
        api.POST("/api/v1/imports/{kind}", {
          params: {
            path: { kind },
            query: {
              project,
              filename: safeFilename(file.name),
              mapping: mappingValue,
              ...(maxPastDays ? { max_past_days: maxPastDays } : {}),
            },
          },
          body: file as unknown as string,
          bodySerializer: (body: unknown) => body as BodyInit,
          headers: { "Content-Type": "application/octet-stream" },
          signal: ctrl.signal,
        }),
      );
      setDone(reply);
    } catch (err) {
      if (!ctrl.signal.aborted) setError(err);
    } finally {
      setStarted(null);
    }
  };

  if (!writer) return <Alert type="info" showIcon title={t("data.import.noRight")} data-testid="import-no-right" />;

  return (
    <Flex vertical gap={16}>
      <Form layout="vertical" style={{ maxWidth: 640 }} onFinish={() => void submit()}>
        <Form.Item label={t("data.import.kind")}>
          <Select
            value={kind}
            onChange={setKind}
            options={KINDS.map((k) => ({ value: k, label: t(`data.tables.${k}`) }))}
            disabled={running}
            style={{ width: 200 }}
            aria-label={t("data.import.kind")}
            data-testid="import-kind"
          />
        </Form.Item>
        <Form.Item label={t("data.import.file")} extra={t("data.import.formats")}>
          <div data-testid="import-upload">
            <Upload.Dragger
              accept=".jsonl,.json,.csv,.parquet,.gz"
              multiple={false}
              maxCount={1}
              disabled={running}
              beforeUpload={(chosen) => {
                setFile(chosen);
                setDone(null);
                return false;
              }}
              onRemove={() => setFile(null)}
              fileList={file ? [{ uid: "chosen", name: file.name, status: "done" }] : []}
            >
              <p className="ant-upload-drag-icon">
                <InboxOutlined />
              </p>
              <p className="ant-upload-text">{t("data.import.drop")}</p>
            </Upload.Dragger>
          </div>
        </Form.Item>
        <Form.Item
          label={t("data.import.mapping")}
          extra={t("data.import.mappingHint")}
          validateStatus={mappingValue === null ? "error" : undefined}
          help={mappingValue === null ? t("data.import.mappingInvalid") : undefined}
        >
          <Input.TextArea
            rows={3}
            value={mapping}
            onChange={(e) => setMapping(e.target.value)}
            placeholder='{"user": "user_id", "event": "action", "time": "ts", "time_unit": "ms"}'
            disabled={running}
            data-testid="import-mapping"
          />
        </Form.Item>
        <Form.Item label={t("data.import.maxPastDays")} extra={t("data.import.maxPastDaysHint")}>
          <InputNumber
            min={1}
            max={36500}
            value={maxPastDays}
            onChange={(v) => setMaxPastDays(typeof v === "number" ? v : null)}
            disabled={running}
            data-testid="import-max-past-days"
          />
        </Form.Item>
        <Flex gap={8} align="center">
          <Button
            type="primary"
            htmlType="submit"
            disabled={!file || mappingValue === null}
            loading={running}
            data-testid="import-submit"
          >
            {t("data.import.start")}
          </Button>
          {running && <Typography.Text type="secondary">{t("data.import.keepOpen")}</Typography.Text>}
        </Flex>
      </Form>
      {running && (
        <div data-testid="import-progress" aria-busy="true">
          <Progress percent={100} status="active" showInfo={false} />
          <Typography.Text>{t("data.import.running", { seconds: Math.round(elapsed) })}</Typography.Text>
        </div>
      )}
      {error ? <ErrorState error={error} /> : null}
      {done && <ImportResult done={done} />}
      {readsWorkspace(me) && <JobsPanel fast={running} />}
    </Flex>
  );
}

function ImportResult({ done }: { done: Imported }) {
  const { t, i18n } = useTranslation();
  const number = new Intl.NumberFormat(i18n.language === "en" ? "en-US" : "zh-CN");
  return (
    <div data-testid="import-result">
      <Alert
        type={done.rejected > 0 ? "warning" : "success"}
        showIcon
        title={t("data.import.done", { accepted: number.format(done.accepted), seconds: done.seconds.toFixed(1) })}
        description={done.rejected > 0 ? t("data.import.seeRejects", { count: done.rejected }) : undefined}
        style={{ marginBottom: 12 }}
      />
      <Descriptions bordered size="small" column={{ xs: 1, md: 3 }}>
        <Descriptions.Item label={t("data.collector.received")}>{number.format(done.received)}</Descriptions.Item>
        <Descriptions.Item label={t("data.collector.accepted")}>{number.format(done.accepted)}</Descriptions.Item>
        <Descriptions.Item label={t("data.collector.rejected")}>{number.format(done.rejected)}</Descriptions.Item>
        <Descriptions.Item label={t("data.collector.duplicates")}>{number.format(done.duplicates)}</Descriptions.Item>
        <Descriptions.Item label={t("data.import.events")}>{number.format(done.events)}</Descriptions.Item>
        <Descriptions.Item label={t("data.import.newProperties")}>
          {done.new_properties.length ? done.new_properties.map((p) => <Tag key={p}>{p}</Tag>) : "—"}
        </Descriptions.Item>
      </Descriptions>
    </div>
  );
}

/** The service's latest job runs, polled (every 2 s during an import, else every 15 s). */
function JobsPanel({ fast }: { fast: boolean }) {
  const { t } = useTranslation();
  const jobs = useApi((signal) => unwrap(api.GET("/api/v1/jobs", { params: { query: { limit: 10 } }, signal })), []);
  const { reload } = jobs;
  useEffect(() => {
    const timer = window.setInterval(reload, fast ? 2000 : 15000);
    return () => window.clearInterval(timer);
  }, [reload, fast]);
  const columns = [
    { title: t("data.jobs.job"), dataIndex: "job" },
    { title: t("common.project"), dataIndex: "project" },
    {
      title: t("common.status"),
      dataIndex: "status",
      render: (v: string) => (
        <Tag color={v === "succeeded" ? "green" : v === "failed" ? "red" : "blue"}>
          {JOB_STATUSES.includes(v) ? t(`data.jobs.statuses.${v}`) : v}
        </Tag>
      ),
    },
    { title: t("data.jobs.started"), dataIndex: "started_at", render: apiTime },
    { title: t("data.jobs.finished"), dataIndex: "finished_at", render: apiTime },
    { title: t("data.jobs.error"), dataIndex: "error", render: (v: string | null) => v ?? "—" },
  ];
  return (
    <div data-testid="jobs-table">
      <Typography.Title level={5}>{t("data.jobs.title")}</Typography.Title>
      {jobs.error && !jobs.data ? (
        <ErrorState error={jobs.error} onRetry={reload} />
      ) : !jobs.data ? (
        <Typography.Text type="secondary">{t("common.loading")}</Typography.Text>
      ) : jobs.data.runs.length === 0 ? (
        <EmptyState>{t("data.jobs.none")}</EmptyState>
      ) : (
        <Table<JobRun> rowKey="id" size="small" dataSource={jobs.data.runs} columns={columns} pagination={false} />
      )}
    </div>
  );
}
