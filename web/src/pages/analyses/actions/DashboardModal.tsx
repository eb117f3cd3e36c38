// "Add to dashboard": the analysis as a tile of an existing or a new dashboard (dashboards.update / .create). A
// tile shows a saved insight, so an analysis not saved yet is saved first under the name given here.
import { App, Form, Input, Radio, Select } from "antd";
import { useTranslation } from "react-i18next";
import { api, unwrap } from "../../../api/client";
import { ErrorState, FormError } from "../../../components/States";
import { SubmitModal } from "../../../components/SubmitModal";
import { useModalSubmit } from "../../../components/useModalSubmit";
import { useApi } from "../../../lib/useApi";
import type { Definition } from "../definition";
import { appendTile, stored } from "../../dashboards/grid";
import { saveInsight, type Insight } from "./SaveInsightModal";

interface Props {
  open: boolean;
  project: string;
  definition: Definition;
  insight?: Insight;
  onClose: () => void;
  /** Called with the insight (saved here when it was not) and the dashboard's id. */
  onAdded: (insight: Insight, dashboardId: number) => void;
}

interface Values {
  target: "existing" | "new";
  dashboard?: number;
  dashboardName?: string;
  insightName?: string;
}

async function addTile(project: string, insightId: number, values: Values): Promise<number> {
  if (values.target === "new") {
    const made = await unwrap(
      api.POST("/api/v1/dashboards", {
        params: { query: { project } },
        body: { project, name: values.dashboardName!.trim(), description: "", layout: appendTile([], insightId) },
      }),
    );
    return made.id;
  }
  const id = values.dashboard!;
  const params = { path: { dashboard_id: id }, query: { project } };
  // The layout is replaced whole: read the latest one just before, so a tile added meanwhile is kept.
  const current = await unwrap(api.GET("/api/v1/dashboards/{dashboard_id}", { params }));
  const layout = appendTile(stored(current.layout), insightId);
  await unwrap(api.PATCH("/api/v1/dashboards/{dashboard_id}", { params, body: { project, layout } }));
  return id;
}

function Fields({ project, needsName }: { project: string; needsName: boolean }) {
  const { t } = useTranslation();
  const dashboards = useApi(
    (signal) => unwrap(api.GET("/api/v1/dashboards", { params: { query: { project } }, signal })),
    [project],
  );
  const target = Form.useWatch("target");
  if (dashboards.error) return <ErrorState error={dashboards.error} onRetry={dashboards.reload} />;
  return (
    <>
      {needsName && (
        <Form.Item name="insightName" label={t("analyses.dashboard.insightName")}
          rules={[{ required: true, whitespace: true, max: 200, message: t("analyses.save.nameRequired") }]}>
          <Input data-testid="dashboard-insight-name" maxLength={200} />
        </Form.Item>
      )}
      <Form.Item name="target">
        <Radio.Group
          options={[
            { value: "existing", label: t("analyses.dashboard.existing") },
            { value: "new", label: t("analyses.dashboard.new") },
          ]}
        />
      </Form.Item>
      {target === "new" ? (
        <Form.Item name="dashboardName" label={t("analyses.dashboard.newName")}
          rules={[{ required: true, whitespace: true, max: 100, message: t("analyses.save.nameRequired") }]}>
          <Input data-testid="dashboard-new-name" maxLength={100} />
        </Form.Item>
      ) : (
        <Form.Item name="dashboard" label={t("analyses.dashboard.pick")}
          rules={[{ required: true, message: t("analyses.dashboard.pickRequired") }]}>
          <Select
            loading={dashboards.loading}
            data-testid="dashboard-select"
            options={(dashboards.data ?? []).map((d) => ({ value: d.id, label: d.name }))}
            notFoundContent={t("analyses.dashboard.none")}
            aria-label={t("analyses.dashboard.pick")}
          />
        </Form.Item>
      )}
    </>
  );
}

export function DashboardModal({ open, project, definition, insight, onClose, onAdded }: Props) {
  const { t } = useTranslation();
  const { message } = App.useApp();
  const [form] = Form.useForm<Values>();
  const { busy, error, submit } = useModalSubmit(form, async (values) => {
    const saved = insight ?? (await saveInsight(project, definition, values.insightName!.trim(), ""));
    const dashboardId = await addTile(project, saved.id, values);
    message.success(t("analyses.dashboard.added"));
    onAdded(saved, dashboardId);
  });

  return (
    <SubmitModal open={open} title={t("analyses.dashboard.title")} okText={t("common.add")} okTestId="dashboard-add-confirm"
      busy={busy} onOk={submit} onClose={onClose}>
      <Form form={form} layout="vertical" initialValues={{ target: "existing" }} preserve={false}>
        {open && <Fields project={project} needsName={!insight} />}
      </Form>
      <FormError error={error} testId="dashboard-add-error" />
    </SubmitModal>
  );
}
