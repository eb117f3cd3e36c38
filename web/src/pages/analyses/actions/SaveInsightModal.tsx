// "Save as insight": a name and a description; an opened insight is updated in place unless "save as new".
import { App, Checkbox, Form, Input } from "antd";
import { useTranslation } from "react-i18next";
import { api, unwrap } from "../../../api/client";
import type { components } from "../../../api/schema";
import { FormError } from "../../../components/States";
import { SubmitModal } from "../../../components/SubmitModal";
import { useModalSubmit } from "../../../components/useModalSubmit";
import type { Definition } from "../definition";

export type Insight = components["schemas"]["Insight"];

interface Props {
  open: boolean;
  project: string;
  definition: Definition;
  /** The insight being edited, if any. */
  insight?: Insight;
  onClose: () => void;
  onSaved: (insight: Insight) => void;
}

export function saveInsight(project: string, definition: Definition, name: string, description: string, id?: number) {
  const body = { project, name, description, definition: definition as unknown as Record<string, unknown> };
  if (id !== undefined) {
    return unwrap(
      api.PUT("/api/v1/insights/{insight_id}", { params: { path: { insight_id: id }, query: { project } }, body }),
    );
  }
  return unwrap(api.POST("/api/v1/insights", { params: { query: { project } }, body }));
}

export function SaveInsightModal({ open, project, definition, insight, onClose, onSaved }: Props) {
  const { t } = useTranslation();
  const { message } = App.useApp();
  const [form] = Form.useForm<{ name: string; description: string; asNew: boolean }>();
  const { busy, error, submit } = useModalSubmit(form, async (values) => {
    const id = insight && !values.asNew ? insight.id : undefined;
    const saved = await saveInsight(project, definition, values.name.trim(), values.description ?? "", id);
    message.success(t("common.saved"));
    onSaved(saved);
  });

  return (
    <SubmitModal open={open} title={t("analyses.save.title")} okText={t("common.save")} okTestId="insight-save-confirm"
      busy={busy} onOk={submit} onClose={onClose}>
      <Form
        form={form}
        layout="vertical"
        initialValues={{ name: insight?.name ?? "", description: insight?.description ?? "", asNew: false }}
        preserve={false}
      >
        <Form.Item name="name" label={t("common.name")} rules={[{ required: true, whitespace: true, max: 200, message: t("analyses.save.nameRequired") }]}>
          <Input data-testid="insight-name" maxLength={200} autoFocus />
        </Form.Item>
        <Form.Item name="description" label={t("common.description")}>
          <Input.TextArea rows={3} maxLength={5000} />
        </Form.Item>
        {insight && (
          <Form.Item name="asNew" valuePropName="checked">
            <Checkbox>{t("analyses.save.asNew")}</Checkbox>
          </Form.Item>
        )}
      </Form>
      <FormError error={error} testId="insight-save-error" />
    </SubmitModal>
  );
}
