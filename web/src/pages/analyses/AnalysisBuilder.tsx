// The analysis builder: the kind, its form, the common filters and date range; the result as chart and table; and
// what to do with it (show the SQL, save as insight, add to a dashboard, save the people behind a number as a
// segment). The whole definition lives in the URL (?q=), so a reload or a shared link shows the same analysis.
import { CodeOutlined, DashboardOutlined, PlayCircleOutlined, SaveOutlined, TeamOutlined } from "@ant-design/icons";
import { Button, Card, Dropdown, Select, Space, Tooltip, Typography } from "antd";
import { useCallback, useEffect, useMemo, useState } from "react";
import { useTranslation } from "react-i18next";
import { useNavigate } from "react-router-dom";
import { api, unwrap } from "../../api/client";
import { useAuth } from "../../auth/AuthContext";
import { ErrorState, Loading } from "../../components/States";
import { useUrlParam } from "../../lib/urlState";
import { DashboardModal } from "./actions/DashboardModal";
import { SaveInsightModal, type Insight } from "./actions/SaveInsightModal";
import { SegmentModal } from "./actions/SegmentModal";
import { SqlModal } from "./actions/SqlModal";
import { DateRangeField } from "./builder/DateRangeField";
import { Row } from "./builder/fields";
import { FilterList } from "./builder/FilterList";
import { KindForm } from "./builder/kindForms";
import {
  defaultDefinition, isRunnable, KINDS, parseDefinition, PEOPLE_KINDS, requiredEvents, toRequest, type Definition,
  type Kind, type PeopleTarget,
} from "./definition";
import { formatters } from "./format";
import { useRegistry, type Registry } from "./registry";
import { ResultView } from "./ResultView";
import { hasData } from "./results/charts";
import { describeTarget, peopleChoices } from "./results/people";
import type { ResultText } from "./results/text";
import { newQueryId, queryRunner, TIMEOUT_S, useQueryRun, type Runner } from "./useQueryRun";

function readUrl(raw: string): unknown {
  if (!raw) return null;
  try {
    return JSON.parse(raw);
  } catch {
    return null;
  }
}

/** A kind's first form, keeping the events, filters and dates of the analysis it replaces. */
export function switchKind(prev: Definition, kind: Kind, fallbackEvents: string[]): Definition {
  const events = requiredEvents(prev).filter(Boolean);
  const [a, b] = [events[0] ?? fallbackEvents[0] ?? "", events[1] ?? fallbackEvents[1] ?? fallbackEvents[0] ?? ""];
  return { ...defaultDefinition(kind, a, b), date_range: prev.date_range, filters: prev.filters } as Definition;
}

function insightRunner(project: string, insightId: number): Runner {
  return async (signal) => {
    const reply = await unwrap(
      api.POST("/api/v1/insights/{insight_id}/run", {
        params: { path: { insight_id: insightId }, query: { project, timeout: TIMEOUT_S } },
        signal,
      }),
    );
    return { ...reply, sql: reply.sql ?? null };
  };
}

interface BuilderProps {
  insight?: Insight;
  onInsightSaved?: (insight: Insight) => void;
}

export function AnalysisBuilder(props: BuilderProps) {
  const { registry, error, reload } = useRegistry();
  if (error) return <ErrorState error={error} onRetry={reload} />;
  if (!registry) return <Loading />;
  return <Builder registry={registry} {...props} />;
}

function Builder({ registry, insight, onInsightSaved }: BuilderProps & { registry: Registry }) {
  const { t, i18n } = useTranslation();
  const { project, can } = useAuth();
  const navigate = useNavigate();
  const [raw, setRaw] = useUrlParam("q");
  const activeEvents = useMemo(() => registry.events.filter((e) => e.active).map((e) => e.event), [registry]);
  const def: Definition = useMemo(
    () =>
      parseDefinition(readUrl(raw)) ??
      (insight ? parseDefinition(insight.definition) : null) ??
      defaultDefinition("funnel", activeEvents[0] ?? "", activeEvents[1] ?? ""),
    [raw, insight, activeEvents],
  );
  const setDef = useCallback((next: Definition) => setRaw(JSON.stringify(next)), [setRaw]);
  const runState = useQueryRun();
  const { run } = runState;
  const [dialog, setDialog] = useState<"save" | "sql" | "dashboard" | null>(null);
  const [peopleTarget, setPeopleTarget] = useState<PeopleTarget | null>(null);
  const runnable = isRunnable(def);
  const mayAnalyse = can("analyse");

  const runNow = useCallback(() => {
    void run(queryRunner(project, toRequest(def)));
  }, [run, project, def]);

  // A deep link or an opened insight shows its result at once; a saved insight's first run may come from the cache.
  // Once per mount: leaving the page (or React's development double mount) cancels the run, a new mount runs again.
  useEffect(() => {
    if (insight && !raw) void run(insightRunner(project, insight.id));
    else if (raw && runnable) runNow();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  const text: ResultText = useMemo(
    () => ({
      t: (key, values) => t(key, values),
      event: registry.eventLabel,
      property: (name, source) => registry.propertyLabel(name, source === "user" ? "users" : "events"),
      fmt: formatters(i18n.language),
    }),
    [t, registry, i18n.language],
  );
  const reply = runState.reply;
  const shown = !!reply && !runState.running && !runState.error && reply.kind === def.kind && hasData(def.kind, reply.result);
  const choices = useMemo(
    () => (shown && PEOPLE_KINDS.has(def.kind) ? peopleChoices(def.kind, reply!.result, text) : []),
    [shown, def.kind, reply, text],
  );
  const loadSql = useCallback(
    (signal: AbortSignal) => queryRunner(project, toRequest(def))(signal, newQueryId(), true).then((r) => r.sql ?? {}),
    [project, def],
  );
  const saved = (next: Insight) => {
    setDialog(null);
    onInsightSaved?.(next);
    if (next.id !== insight?.id) {
      navigate({ pathname: `/analyses/insights/${next.id}`, search: `?project=${encodeURIComponent(project)}&q=${encodeURIComponent(raw || JSON.stringify(def))}` });
    }
  };

  return (
    <Space orientation="vertical" style={{ width: "100%" }} size="middle">
      <Card size="small">
        <Row label={t("analyses.builder.kind")}>
          <Select<Kind>
            value={def.kind}
            style={{ width: 220 }}
            data-testid="analysis-kind"
            aria-label={t("analyses.builder.kind")}
            options={KINDS.map((k) => ({ value: k, label: t(`analyses.kind.${k}`) }))}
            onChange={(kind) => setDef(switchKind(def, kind, activeEvents))}
          />
          <Typography.Text type="secondary" style={{ marginLeft: 12 }}>{t(`analyses.kindHelp.${def.kind}`)}</Typography.Text>
        </Row>
        <KindForm def={def} onChange={setDef} registry={registry} />
        <Row label={t("analyses.builder.filters")}>
          <FilterList registry={registry} filters={def.filters ?? []} onChange={(filters) => setDef({ ...def, filters })}
            testId="analysis-filters" />
        </Row>
        {def.kind !== "drilldown" && (
          <Row label={t("analyses.builder.dateRange")}>
            <DateRangeField value={def.date_range} onChange={(date_range) => setDef({ ...def, date_range })} timezone={registry.timezone} />
          </Row>
        )}
        <Space wrap>
          <Tooltip title={runnable ? undefined : t("analyses.run.incomplete")}>
            <Button type="primary" icon={<PlayCircleOutlined />} onClick={runNow} disabled={!runnable}
              loading={runState.running} data-testid="analysis-run">
              {t("common.run")}
            </Button>
          </Tooltip>
          <Button icon={<CodeOutlined />} onClick={() => setDialog("sql")} disabled={!runnable} data-testid="analysis-sql">
            {t("common.showSql")}
          </Button>
          {mayAnalyse && (
            <>
              <Button icon={<SaveOutlined />} onClick={() => setDialog("save")} disabled={!runnable} data-testid="analysis-save">
                {insight ? t("analyses.save.update") : t("analyses.save.button")}
              </Button>
              <Button icon={<DashboardOutlined />} onClick={() => setDialog("dashboard")} disabled={!runnable}
                data-testid="analysis-add-to-dashboard">
                {t("analyses.dashboard.button")}
              </Button>
              {PEOPLE_KINDS.has(def.kind) && (
                <Dropdown
                  disabled={choices.length === 0}
                  menu={{
                    items: choices.map((c, i) => ({
                      key: String(i),
                      label: <span data-testid={`to-segment-option-${i}`}>{c.label}</span>,
                    })),
                    onClick: ({ key }) => setPeopleTarget(choices[Number(key)].target),
                  }}
                >
                  <Button icon={<TeamOutlined />} data-testid="analysis-to-segment" disabled={choices.length === 0}>
                    {t("analyses.toSegment.button")}
                  </Button>
                </Dropdown>
              )}
            </>
          )}
        </Space>
      </Card>
      <Card size="small">
        <ResultView
          kind={def.kind}
          reply={reply}
          error={runState.error}
          running={runState.running}
          startedAt={runState.startedAt}
          onCancel={runState.cancel}
          onRetry={runNow}
          eventLabel={registry.eventLabel}
          propertyLabel={registry.propertyLabel}
          onPeople={mayAnalyse && PEOPLE_KINDS.has(def.kind) ? setPeopleTarget : undefined}
        />
      </Card>
      <SqlModal open={dialog === "sql"} onClose={() => setDialog(null)} load={loadSql} />
      <SaveInsightModal open={dialog === "save"} project={project} definition={toRequest(def)} insight={insight}
        onClose={() => setDialog(null)} onSaved={saved} />
      <DashboardModal open={dialog === "dashboard"} project={project} definition={toRequest(def)} insight={insight}
        onClose={() => setDialog(null)}
        onAdded={(next) => (insight ? setDialog(null) : saved(next))} />
      <SegmentModal project={project} definition={def} target={peopleTarget}
        describe={(target) => describeTarget(def, target, text)}
        onClose={() => setPeopleTarget(null)}
        onCreated={(id) => {
          setPeopleTarget(null);
          navigate({ pathname: `/segments/${id}`, search: `?project=${encodeURIComponent(project)}` });
        }} />
    </Space>
  );
}
