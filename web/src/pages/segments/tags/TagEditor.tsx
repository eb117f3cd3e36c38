// Create or edit a tag: its names, kind, value type and where its values come from (a profile property, an
// aggregate of events, a model's output). Saving computes it at the next run (tags.create / tags.update).
import { App, Button, Card, Form, Input, InputNumber, Select, Space, Tooltip, Typography } from "antd";
import { useEffect, useState } from "react";
import { useTranslation } from "react-i18next";
import { useNavigate, useParams } from "react-router-dom";
import { api, unwrap } from "../../../api/client";
import { useAuth } from "../../../auth/AuthContext";
import { ErrorState, Loading } from "../../../components/States";
import { useApi } from "../../../lib/useApi";
import { useUrlJson } from "../../../lib/urlState";
import { useRegistry } from "../registry";
import { MODEL_FIELDS } from "../rule/ConditionEditor";
import {
  AGGS, BUILT_KINDS, EMPTY_TAG, formFromDefinition, KIND_SOURCES, PROPERTY_AGGS, TAG_TYPES, tagBody,
  type TagFormValues,
} from "./tagForm";

export function TagEditor() {
  const { t } = useTranslation();
  const { name } = useParams();
  const { project, can } = useAuth();
  const navigate = useNavigate();
  const { message } = App.useApp();
  const { registry } = useRegistry();
  // the draft lives in the URL (?draft=…) once touched; before that the form shows the saved tag (or a new one)
  const [draft, setDraft] = useUrlJson<TagFormValues | null>("draft", null);
  // the form's own state is the truth while typing (fast edits must not read a stale URL); the URL follows it
  const [edited, setEdited] = useState<TagFormValues | null>(draft);
  const [saving, setSaving] = useState(false);
  const [error, setError] = useState<unknown>();
  const existing = useApi(
    (signal) => (name ? unwrap(api.GET("/api/v1/tags/{tag}", { params: { path: { tag: name }, query: { project } }, signal }))
      : Promise.resolve(undefined)),
    [name, project],
  );

  useEffect(() => {
    if (edited) setDraft(edited);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [edited]);

  if (name && existing.loading && !existing.data) return <Loading />;
  if (name && existing.error) return <ErrorState error={existing.error} onRetry={existing.reload} />;

  const base = existing.data ? formFromDefinition(existing.data.definition as Record<string, unknown>) : EMPTY_TAG;
  const v: TagFormValues = edited ?? base;
  const set = (patch: Partial<TagFormValues>) => setEdited((old) => ({ ...(old ?? base), ...patch }));
  const sources = KIND_SOURCES[v.kind] ?? ["events"];
  const search = `?project=${encodeURIComponent(project)}`;
  const save = async () => {
    setSaving(true);
    setError(undefined);
    try {
      const previous = existing.data?.definition as Record<string, unknown> | undefined;
      const body = tagBody(v, project, previous);
      const saved = name
        ? await unwrap(api.PUT("/api/v1/tags/{tag}", { params: { path: { tag: name }, query: { project } }, body }))
        : await unwrap(api.POST("/api/v1/tags", { params: { query: { project } }, body }));
      message.success(t("common.saved"));
      navigate({ pathname: `/segments/tags/${encodeURIComponent(saved.name)}`, search });
    } catch (err) {
      setError(err);
    } finally {
      setSaving(false);
    }
  };
  const eventOptions = [{ value: "$any", label: t("segments.rule.anyEvent") },
    ...registry.events.map((e) => ({ value: e.event, label: e.event }))];
  const propertyOptions = (table: "users" | "events") =>
    (table === "users" ? registry.userProperties : registry.eventProperties).map((p) => ({ value: p.name, label: p.name }));

  return (
    <Card title={name ? t("segments.tags.editTitle") : t("segments.tags.newTitle")} data-testid="tag-editor">
      <Form layout="vertical" style={{ maxWidth: 720 }}>
        <Form.Item label={t("common.name")} required extra={t("segments.tags.nameHint")}>
          <Input value={v.name} disabled={!!name} onChange={(e) => set({ name: e.target.value })} data-testid="tag-name" />
        </Form.Item>
        <Space wrap>
          <Form.Item label={t("segments.tags.titleZh")}>
            <Input value={v.title_zh} onChange={(e) => set({ title_zh: e.target.value })} data-testid="tag-title-zh" />
          </Form.Item>
          <Form.Item label={t("segments.tags.titleEn")}>
            <Input value={v.title_en} onChange={(e) => set({ title_en: e.target.value })} data-testid="tag-title-en" />
          </Form.Item>
        </Space>
        <Form.Item label={t("common.description")}>
          <Input.TextArea value={v.description} autoSize={{ minRows: 1, maxRows: 4 }}
            onChange={(e) => set({ description: e.target.value })} />
        </Form.Item>
        <Space wrap>
          <Form.Item label={t("segments.tags.kind")}>
            <Select style={{ width: 180 }} value={v.kind} data-testid="tag-kind"
              options={BUILT_KINDS.map((k) => ({ value: k, label: t(`segments.tagKinds.${k}`) }))}
              onChange={(kind) => set({ kind, from: KIND_SOURCES[kind][0] })} />
          </Form.Item>
          <Form.Item label={t("segments.tags.type")}>
            <Select style={{ width: 160 }} value={v.type} data-testid="tag-type"
              options={TAG_TYPES.map((ty) => ({ value: ty, label: t(`segments.tagTypes.${ty}`) }))}
              onChange={(type) => set({ type })} />
          </Form.Item>
          {sources.length > 1 && (
            <Form.Item label={t("segments.tags.source")}>
              <Select style={{ width: 160 }} value={v.from} onChange={(from) => set({ from })}
                options={sources.map((s) => ({ value: s, label: t(`segments.tagSources.${s}`) }))} />
            </Form.Item>
          )}
        </Space>
        <Typography.Paragraph type="secondary">{t(`segments.tagKindHints.${v.kind}`)}</Typography.Paragraph>
        {v.type === "enum" && (
          <Form.Item label={t("segments.tags.values")} extra={t("segments.tags.valuesHint")}>
            <Select mode="tags" value={v.values} onChange={(values: string[]) => set({ values })} data-testid="tag-values" />
          </Form.Item>
        )}
        {v.from === "profile" && (
          <Space wrap>
            <Form.Item label={t("segments.tags.property")} required>
              <Select style={{ width: 220 }} value={v.property || undefined} options={propertyOptions("users")}
                showSearch={{ optionFilterProp: "label" }} onChange={(property) => set({ property })} data-testid="tag-property" />
            </Form.Item>
            <Form.Item label={t("segments.tags.derive")}>
              <Select style={{ width: 200 }} value={v.derive} onChange={(derive) => set({ derive })}
                options={["", "years_since", "days_since", "month_day"].map((d) => ({ value: d, label: t(`segments.tags.derives.${d || "none"}`) }))} />
            </Form.Item>
          </Space>
        )}
        {v.from === "events" && (
          <Space wrap>
            <Form.Item label={t("segments.tags.event")} required>
              <Select style={{ width: 200 }} value={v.event || undefined} options={eventOptions}
                showSearch={{ optionFilterProp: "label" }} onChange={(event) => set({ event })} data-testid="tag-event" />
            </Form.Item>
            <Form.Item label={t("segments.tags.agg")}>
              <Select style={{ width: 200 }} value={v.agg} onChange={(agg) => set({ agg })} data-testid="tag-agg"
                options={AGGS.map((a) => ({ value: a, label: t(`segments.aggs.${a}`) }))} />
            </Form.Item>
            {PROPERTY_AGGS.has(v.agg) && (
              <Form.Item label={t("segments.tags.property")} required>
                <Select style={{ width: 200 }} value={v.property || undefined} options={propertyOptions("events")}
                  showSearch={{ optionFilterProp: "label" }} onChange={(property) => set({ property })} />
              </Form.Item>
            )}
            <Form.Item label={t("segments.rule.windowDays")} extra={t("segments.tags.windowHint")}>
              <InputNumber min={1} max={3660} precision={0} value={v.windowDays}
                onChange={(n) => set({ windowDays: n ?? null })} data-testid="tag-window" />
            </Form.Item>
          </Space>
        )}
        {v.from === "model" && (
          <Space wrap>
            <Form.Item label={t("segments.tags.model")} required>
              <Select style={{ width: 180 }} value={v.model || undefined} onChange={(model) => set({ model, field: "" })}
                options={registry.models.map((m) => ({ value: m, label: m }))} data-testid="tag-model" />
            </Form.Item>
            <Form.Item label={t("segments.tags.field")} required>
              <Select style={{ width: 200 }} value={v.field || undefined} onChange={(field) => set({ field })}
                options={(MODEL_FIELDS[v.model] ?? []).map((f) => ({ value: f, label: f }))} data-testid="tag-field" />
            </Form.Item>
          </Space>
        )}
      </Form>
      {error ? <ErrorState error={error} /> : null}
      <Space style={{ marginTop: 12 }}>
        <Tooltip title={can("analyse") ? undefined : t("common.noRight")}>
          <Button type="primary" loading={saving} disabled={!can("analyse") || !v.name.trim()} onClick={save}
            data-testid="tag-save">{t("common.save")}</Button>
        </Tooltip>
        <Button onClick={() => navigate(-1)}>{t("common.cancel")}</Button>
      </Space>
    </Card>
  );
}
