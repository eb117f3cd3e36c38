// Look-alikes of a segment (segments.lookalike): people outside the seed who resemble it most, saved as a new
// segment, with the model's quality (cross-validated AUC, hold-out lift) and what made people look alike.
import { Alert, Button, Checkbox, Descriptions, Form, Input, InputNumber, Modal, Space, Table, Typography } from "antd";
import { useState } from "react";
import { useTranslation } from "react-i18next";
import { useNavigate } from "react-router-dom";
import { api, unwrap } from "../../api/client";
import type { components } from "../../api/schema";
import { useAuth } from "../../auth/AuthContext";
import { ErrorState, Loading } from "../../components/States";
import { bilingual, formatCount, formatNumber, formatShare, langOf } from "./format";

type ShownSegment = components["schemas"]["ShownSegment"];

type Lookalike = components["schemas"]["Lookalike"];
type FeatureKind = "tag" | "property" | "model";
const FEATURE_KINDS: FeatureKind[] = ["tag", "property", "model"];

export function LookalikeModal({ open, seed, onClose }: { open: boolean; seed: ShownSegment; onClose: () => void }) {
  const { t, i18n } = useTranslation();
  const lang = langOf(i18n.language);
  const { project } = useAuth();
  const navigate = useNavigate();
  const [name, setName] = useState(() => t("segments.lookalike.defaultName", { name: seed.name }));
  const [topN, setTopN] = useState<number>(Math.max(100, seed.size ?? 100));
  const [features, setFeatures] = useState<FeatureKind[]>(["tag", "property"]);
  const [running, setRunning] = useState<AbortController | null>(null);
  const [result, setResult] = useState<Lookalike>();
  const [error, setError] = useState<unknown>();

  const run = async () => {
    const ctrl = new AbortController();
    setRunning(ctrl);
    setError(undefined);
    setResult(undefined);
    try {
      setResult(await unwrap(api.POST("/api/v1/segments/lookalike", {
        params: { query: { project } },
        body: { project, name: name.trim(), seed: seed.id, top_n: topN, features, save: true },
        signal: ctrl.signal,
      })));
    } catch (err) {
      if (!ctrl.signal.aborted) setError(err);
    } finally {
      setRunning(null);
    }
  };
  const cancel = () => running?.abort();
  const saved = result?.segment;

  return (
    <Modal open={open} onCancel={() => { cancel(); onClose(); }} title={t("segments.lookalike.title")} width={760}
      footer={null} destroyOnHidden>
      <div data-testid="lookalike-dialog">
        <Form layout="vertical">
          <Form.Item label={t("common.name")} required>
            <Input value={name} maxLength={200} onChange={(e) => setName(e.target.value)} data-testid="lookalike-name" />
          </Form.Item>
          <Form.Item label={t("segments.lookalike.topN")}>
            <InputNumber min={1} max={5_000_000} precision={0} value={topN} onChange={(n) => setTopN(n ?? 1)}
              data-testid="lookalike-top-n" />
          </Form.Item>
          <Form.Item label={t("segments.features")}>
            <Checkbox.Group value={features} onChange={(v) => setFeatures(v as FeatureKind[])}
              options={FEATURE_KINDS.map((k) => ({ value: k, label: t(`segments.featureKinds.${k}`) }))} />
          </Form.Item>
          <Button type="primary" onClick={run} loading={!!running} disabled={!name.trim() || features.length === 0}
            data-testid="lookalike-run">{t("segments.lookalike.run")}</Button>
        </Form>
        {running && <Loading computing onCancel={cancel} />}
        {error ? <ErrorState error={error} /> : null}
        {result && (
          <Space orientation="vertical" style={{ width: "100%", marginTop: 16 }} data-testid="lookalike-result">
            {result.warnings.map((w) => <Alert key={w.code} type="warning" showIcon title={bilingual(w, lang)} />)}
            <Typography.Paragraph>{bilingual(result.note, lang)}</Typography.Paragraph>
            <Descriptions size="small" column={2} items={[
              { key: "size", label: t("segments.lookalike.found"), children: formatCount(result.size, lang) },
              { key: "seed", label: t("segments.lookalike.seedSize"), children: formatCount(result.seed_size, lang) },
              { key: "auc", label: t("segments.lookalike.auc"), children: formatNumber(result.quality.cv_auc, lang, 3) },
              { key: "lift", label: t("segments.lookalike.lift"), children: formatNumber(result.quality.holdout?.lift, lang, 1) },
              { key: "precision", label: t("segments.lookalike.precision"), children: formatShare(result.quality.holdout?.precision, lang) },
              { key: "recall", label: t("segments.lookalike.recall"), children: formatShare(result.quality.holdout?.recall, lang) },
            ]} />
            <Table size="small" pagination={false} rowKey="column" dataSource={result.influential.slice(0, 10)}
              columns={[{ title: t("segments.lookalike.why"), render: (_: unknown, r) => bilingual(r, lang) }]} />
            {saved && (
              <Button type="primary" data-testid="lookalike-open"
                onClick={() => { onClose(); navigate({ pathname: `/segments/${saved.id}`, search: `?project=${encodeURIComponent(project)}` }); }}>
                {t("segments.lookalike.open", { name: saved.name })}
              </Button>
            )}
          </Space>
        )}
      </div>
    </Modal>
  );
}
