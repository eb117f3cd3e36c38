// Compare two groups (segments.compare): A is a segment, B another segment or everyone not in A. The features
// (tags, profile properties, model outputs) that differ significantly are ranked by effect size, in a bar chart
// and a table whose rows open the value-by-value shares. A and B live in the URL (?a=3&b=everyone).
import { Alert, Button, Card, Checkbox, Descriptions, Select, Space, Table, Tag, Typography } from "antd";
import { useMemo } from "react";
import { useTranslation } from "react-i18next";
import { api, unwrap } from "../../../api/client";
import type { components } from "../../../api/schema";
import { useAuth } from "../../../auth/AuthContext";
import { Chart } from "../../../components/Chart";
import { EmptyState, ErrorState, Loading } from "../../../components/States";
import { useApi } from "../../../lib/useApi";
import { useUrlParam } from "../../../lib/urlState";
import { compareBarOption, type FeatureResult } from "../charts";
import { bilingual, formatCount, formatNumber, formatP, formatShare, langOf, type Lang } from "../format";
import { useRegistry } from "../registry";
import { compareBody, EVERYONE, type FeatureKind } from "./compareBody";

type Comparison = components["schemas"]["userloop__ops__segments__Comparison"];
const FEATURE_KINDS: FeatureKind[] = ["tag", "property", "model"];

export function ComparePage() {
  const { t, i18n } = useTranslation();
  const lang = langOf(i18n.language);
  const { project } = useAuth();
  const { registry } = useRegistry();
  const [a, setA] = useUrlParam("a");
  const [b, setB] = useUrlParam("b", EVERYONE);
  const [featuresParam, setFeatures] = useUrlParam("features", "tag,property,model");
  const features = featuresParam.split(",").filter((f): f is FeatureKind => FEATURE_KINDS.includes(f as FeatureKind));
  const aId = Number(a);
  const ready = Number.isInteger(aId) && aId > 0 && features.length > 0 && b !== a;

  const result = useApi(
    (signal) =>
      ready
        ? unwrap(api.POST("/api/v1/segments/compare", {
            params: { query: { project } }, body: compareBody(project, aId, b, features), signal,
          }))
        : Promise.resolve(undefined),
    [project, aId, b, featuresParam, ready],
  );
  const nameOf = (id: string) => registry.segments.find((s) => String(s.id) === id)?.name ?? id;
  const segmentOptions = registry.segments.map((s) => ({ value: String(s.id), label: s.name }));

  return (
    <Space orientation="vertical" size="middle" style={{ width: "100%" }} data-testid="segment-compare-page">
      <Card title={t("segments.compare.title")} size="small">
        <Space wrap align="center">
          <Typography.Text strong>A</Typography.Text>
          <Select style={{ minWidth: 220 }} value={a || undefined} options={segmentOptions}
            placeholder={t("segments.rule.pickSegment")} onChange={setA} showSearch={{ optionFilterProp: "label" }}
            data-testid="compare-a" />
          <Typography.Text strong>B</Typography.Text>
          <Select style={{ minWidth: 220 }} value={b}
            options={[{ value: EVERYONE, label: t("segments.compare.everyoneElse") },
              ...segmentOptions.filter((o) => o.value !== a)]}
            onChange={setB} showSearch={{ optionFilterProp: "label" }} data-testid="compare-b" />
          <Checkbox.Group value={features} onChange={(v) => setFeatures((v as string[]).join(","))}
            options={FEATURE_KINDS.map((k) => ({ value: k, label: t(`segments.featureKinds.${k}`) }))} />
        </Space>
      </Card>
      {!ready ? <EmptyState>{t("segments.compare.pick")}</EmptyState>
        : result.loading ? <Loading computing onCancel={result.cancel} />
        : result.error ? <ErrorState error={result.error} onRetry={result.reload} />
        : result.data ? <CompareResult data={result.data} lang={lang} names={{ a: nameOf(a), b: nameOf(b) }} />
        : <Button onClick={result.reload}>{t("common.run")}</Button>}
    </Space>
  );
}

function CompareResult({ data, lang, names }: { data: Comparison; lang: Lang; names: { a: string; b: string } }) {
  const { t } = useTranslation();
  const option = useMemo(() => compareBarOption(data.features, lang, t("segments.compare.effect")), [data, lang, t]);
  const significant = data.features.filter((f) => f.significant);
  return (
    <>
      <Card size="small">
        <Descriptions size="small" column={{ xs: 1, md: 4 }} items={[
          { key: "a", label: `A · ${names.a}`, children: formatCount(data.groups.a.size, lang) },
          { key: "b", label: `B · ${data.groups.b.everyone_else ? t("segments.compare.everyoneElse") : names.b}`,
            children: formatCount(data.groups.b.size, lang) },
          { key: "overlap", label: t("segments.compare.overlap"), children: formatCount(data.groups.overlap, lang) },
          { key: "sig", label: t("segments.compare.significant"),
            children: t("segments.compare.ofTested", { n: data.significant, tested: data.tested }) },
        ]} />
        {data.notes.map((n) => <Typography.Paragraph key={n.code} type="secondary">{bilingual(n, lang)}</Typography.Paragraph>)}
        {data.skipped.length > 0 && (
          <Alert type="info" showIcon title={t("segments.compare.skipped", { n: data.skipped.length })}
            description={data.skipped.map((s) => `${s.label}: ${bilingual(s.reason as { zh: string; en: string }, lang)}`).join("; ")} />
        )}
      </Card>
      <Card size="small" title={t("segments.compare.chartTitle")}>
        {significant.length === 0 ? <EmptyState>{t("segments.compare.noDifference")}</EmptyState>
          : <Chart option={option} height={Math.max(200, Math.min(15, significant.length) * 28 + 60)} testId="compare-chart" />}
      </Card>
      <Card size="small" title={t("segments.compare.tableTitle")}>
        <FeatureTable features={data.features} lang={lang} />
      </Card>
    </>
  );
}

function FeatureTable({ features, lang }: { features: FeatureResult[]; lang: Lang }) {
  const { t } = useTranslation();
  return (
    <Table
      size="small"
      rowKey="name"
      dataSource={features}
      data-testid="compare-table"
      pagination={{ pageSize: 20, hideOnSinglePage: true }}
      expandable={{
        rowExpandable: (f) => !!(f.values?.length || f.a),
        expandedRowRender: (f) => <FeatureDetail feature={f} lang={lang} />,
      }}
      columns={[
        { title: t("segments.compare.feature"), dataIndex: "label",
          render: (label: string, f) => <Space><span>{label}</span><Tag>{t(`segments.featureKinds.${f.kind === "model" ? "model" : f.kind === "tag" ? "tag" : "property"}`)}</Tag></Space> },
        { title: t("segments.compare.summary"), render: (_: unknown, f) => bilingual(f.summary, lang) },
        { title: t("segments.compare.effect"), align: "right",
          render: (_: unknown, f) => `${formatNumber(f.effect_size.value, lang, 2)} (${f.effect_size.measure === "cohens_d" ? "d" : "V"})` },
        { title: t("segments.compare.pAdjusted"), align: "right", render: (_: unknown, f) => formatP(f.p_adjusted) },
        { title: t("segments.compare.significantCol"), align: "center",
          render: (_: unknown, f) => (f.significant ? <Tag color="blue">{t("common.yes")}</Tag> : <Tag>{t("common.no")}</Tag>) },
      ]}
    />
  );
}

function FeatureDetail({ feature: f, lang }: { feature: FeatureResult; lang: Lang }) {
  const { t } = useTranslation();
  if (f.values?.length) {
    return (
      <Table size="small" pagination={false} rowKey="value" dataSource={f.values}
        columns={[
          { title: t("common.value"), dataIndex: "value" },
          { title: t("segments.compare.shareA"), align: "right", render: (_: unknown, v) => formatShare(v.share_a, lang) },
          { title: t("segments.compare.shareB"), align: "right", render: (_: unknown, v) => formatShare(v.share_b, lang) },
          { title: t("segments.compare.lift"), align: "right", render: (_: unknown, v) => (v.lift === null ? "—" : `${formatNumber(v.lift, lang, 1)}×`) },
        ]} />
    );
  }
  const row = (k: "mean" | "p50" | "sd") => ({
    key: k, stat: t(`segments.compare.stats.${k}`), a: formatNumber(f.a?.[k], lang, 2), b: formatNumber(f.b?.[k], lang, 2),
  });
  return (
    <Table size="small" pagination={false} dataSource={[row("mean"), row("p50"), row("sd")]}
      columns={[
        { title: "", dataIndex: "stat" },
        { title: "A", dataIndex: "a", align: "right" },
        { title: "B", dataIndex: "b", align: "right" },
      ]} />
  );
}
