// Create or edit a rule segment: name, description, refresh, the rule builder and its live size estimate. Every
// part of the draft lives in the URL (?rule=…&name=…), so a half-built segment can be shared or reloaded.
import { App, Alert, Button, Card, Col, Form, Input, Row, Select, Space, Spin, Statistic, Tooltip, Typography } from "antd";
import { useEffect, useState } from "react";
import { useTranslation } from "react-i18next";
import { useNavigate, useParams, useSearchParams } from "react-router-dom";
import { api, unwrap } from "../../api/client";
import { useAuth } from "../../auth/AuthContext";
import { ErrorState, Loading } from "../../components/States";
import { useApi } from "../../lib/useApi";
import { formatCount, formatNumber, formatShare, langOf } from "./format";
import { useRegistry } from "./registry";
import { RuleBuilder } from "./rule/RuleBuilder";
import { asGroup, countConditions, type Group, type Rule } from "./rule/ruleModel";
import { useEstimate, type EstimateState } from "./useEstimate";

function readRule(raw: string | null): Group | null {
  if (!raw) return null;
  try {
    return asGroup(JSON.parse(raw) as Rule);
  } catch {
    return null;
  }
}

export function SegmentEditor() {
  const { t } = useTranslation();
  const { id } = useParams();
  const segmentId = id ? Number(id) : null;
  const { project, can } = useAuth();
  const navigate = useNavigate();
  const { message } = App.useApp();
  const [params, setParams] = useSearchParams();
  const { registry, error: registryError } = useRegistry();
  const [saving, setSaving] = useState(false);
  const [saveError, setSaveError] = useState<unknown>();

  const existing = useApi(
    (signal) =>
      segmentId
        ? unwrap(api.GET("/api/v1/segments/{segment_id}", {
            params: { path: { segment_id: segmentId }, query: { project } }, signal,
          }))
        : Promise.resolve(undefined),
    [segmentId, project],
  );

  const rule = readRule(params.get("rule")) ?? { all: [] };
  const name = params.get("name") ?? "";
  const description = params.get("desc") ?? "";
  const refresh = (params.get("refresh") ?? "daily") as "daily" | "manual";

  const setDraft = (changes: Record<string, string>) =>
    setParams((prev) => {
      const copy = new URLSearchParams(prev);
      for (const [key, value] of Object.entries(changes)) {
        if (value === "") copy.delete(key);
        else copy.set(key, value);
      }
      return copy;
    }, { replace: true });

  // Editing: the saved segment fills the draft once, unless the URL already holds one.
  useEffect(() => {
    const seg = existing.data;
    if (!seg || params.get("rule")) return;
    setDraft({
      rule: JSON.stringify(asGroup(seg.definition as unknown as Rule)),
      name: seg.name,
      desc: seg.description,
      refresh: seg.refresh,
    });
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [existing.data]);

  const estimate = useEstimate(project, rule);

  if (segmentId && existing.loading && !existing.data) return <Loading />;
  if (segmentId && existing.error) return <ErrorState error={existing.error} onRetry={existing.reload} />;
  if (existing.data && existing.data.kind !== "rule") {
    return <Alert type="info" showIcon title={t("segments.editor.notRule")} />;
  }

  const mayWrite = can("analyse");
  const save = async () => {
    setSaving(true);
    setSaveError(undefined);
    try {
      const body = { project, name: name.trim(), description, refresh, rule: rule as unknown as Record<string, unknown> };
      const saved = segmentId
        ? await unwrap(api.PATCH("/api/v1/segments/{segment_id}", {
            params: { path: { segment_id: segmentId }, query: { project } }, body,
          }))
        : await unwrap(api.POST("/api/v1/segments", { params: { query: { project } }, body: { ...body, compute: true } }));
      message.success(t("common.saved"));
      navigate({ pathname: `/segments/${saved.id}`, search: `?project=${encodeURIComponent(project)}` });
    } catch (err) {
      setSaveError(err);
    } finally {
      setSaving(false);
    }
  };

  return (
    <Row gutter={16}>
      <Col xs={24} lg={16}>
        <Card title={segmentId ? t("segments.editor.editTitle") : t("segments.editor.newTitle")}>
          <Form layout="vertical">
            <Form.Item label={t("common.name")} required>
              <Input value={name} maxLength={200} onChange={(e) => setDraft({ name: e.target.value })}
                data-testid="segment-name" />
            </Form.Item>
            <Form.Item label={t("common.description")}>
              <Input.TextArea value={description} autoSize={{ minRows: 1, maxRows: 4 }}
                onChange={(e) => setDraft({ desc: e.target.value })} data-testid="segment-description" />
            </Form.Item>
            <Form.Item label={t("segments.refresh")}>
              <Select value={refresh} style={{ width: 200 }} onChange={(v) => setDraft({ refresh: v })}
                options={[{ value: "daily", label: t("segments.refreshModes.daily") }, { value: "manual", label: t("segments.refreshModes.manual") }]}
                data-testid="segment-refresh" />
            </Form.Item>
            <Form.Item label={t("segments.rule.title")}>
              {registryError ? <ErrorState error={registryError} /> : null}
              <RuleBuilder value={rule} registry={registry} onChange={(next) => setDraft({ rule: JSON.stringify(next) })} />
            </Form.Item>
          </Form>
          {saveError ? <ErrorState error={saveError} /> : null}
          <Space>
            <Tooltip title={mayWrite ? undefined : t("common.noRight")}>
              <Button type="primary" loading={saving} onClick={save} data-testid="segment-save"
                disabled={!mayWrite || !name.trim() || countConditions(rule) === 0}>
                {t("common.save")}
              </Button>
            </Tooltip>
            <Button onClick={() => navigate(-1)}>{t("common.cancel")}</Button>
          </Space>
        </Card>
      </Col>
      <Col xs={24} lg={8}>
        <EstimatePanel state={estimate} />
      </Col>
    </Row>
  );
}

export function EstimatePanel({ state }: { state: EstimateState }) {
  const { t, i18n } = useTranslation();
  const lang = langOf(i18n.language);
  const { estimate, error, loading, incomplete } = state;
  return (
    <Card title={t("segments.estimate.title")} data-testid="segment-estimate" style={{ position: "sticky", top: 16 }}>
      {incomplete && <Typography.Paragraph type="secondary">{t("segments.estimate.incomplete")}</Typography.Paragraph>}
      {!incomplete && error ? <ErrorState error={error} /> : null}
      <Spin spinning={loading}>
        {estimate && !incomplete && !error && (
          <>
            <Statistic title={t("segments.estimate.size")} value={formatCount(estimate.size, lang)}
              data-testid="segment-estimate-size" />
            <Typography.Paragraph>
              {t("segments.estimate.share", {
                share: formatShare(estimate.share, lang), total: formatCount(estimate.total, lang),
              })}
            </Typography.Paragraph>
            <Typography.Text type="secondary">
              {t("segments.estimate.took", { ms: formatNumber(estimate.took_ms, lang, 0) })}
            </Typography.Text>
            {estimate.warnings.map((w) => <Alert key={w} type="warning" showIcon title={w} style={{ marginTop: 8 }} />)}
          </>
        )}
        {!estimate && !error && !incomplete && <Typography.Text type="secondary">{t("common.computing")}</Typography.Text>}
      </Spin>
    </Card>
  );
}
