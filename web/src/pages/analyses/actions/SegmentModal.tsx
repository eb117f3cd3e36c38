// "People behind this number → save as a segment": a static segment of the people a funnel step, a retention
// cell, a lifecycle bucket or a stickiness row counts (segments.from_analysis).
import { App, Form, Input } from "antd";
import { useTranslation } from "react-i18next";
import { api, unwrap } from "../../../api/client";
import { FormError } from "../../../components/States";
import { SubmitModal } from "../../../components/SubmitModal";
import { useModalSubmit } from "../../../components/useModalSubmit";
import { peopleDefinition, type Definition, type PeopleTarget } from "../definition";

interface Props {
  project: string;
  definition: Definition;
  /** The number whose people to save; the modal is open while it is set. */
  target: PeopleTarget | null;
  /** What the number is, in words (shown above the name). */
  describe: (target: PeopleTarget) => string;
  onClose: () => void;
  onCreated: (segmentId: number) => void;
}

export function SegmentModal({ project, definition, target, describe, onClose, onCreated }: Props) {
  const { t } = useTranslation();
  const { message } = App.useApp();
  const [form] = Form.useForm<{ name: string; description: string }>();
  const { busy, error, submit } = useModalSubmit(form, async (values) => {
    if (!target) return;
    const made = await unwrap(
      api.POST("/api/v1/segments/from-analysis", {
        params: { query: { project } },
        body: {
          project,
          name: values.name.trim(),
          description: values.description ?? "",
          definition: peopleDefinition(definition, target) as unknown as Record<string, unknown>,
        },
      }),
    );
    message.success(t("analyses.toSegment.created", { count: made.size ?? 0 }));
    onCreated(made.id);
  });

  return (
    <SubmitModal open={target !== null} title={t("analyses.toSegment.title")} okText={t("common.create")}
      okTestId="segment-create-confirm" busy={busy} onOk={() => target && submit()} onClose={onClose}>
      {target && <p data-testid="segment-target">{describe(target)}</p>}
      <Form form={form} layout="vertical" preserve={false}>
        <Form.Item name="name" label={t("common.name")}
          rules={[{ required: true, whitespace: true, max: 200, message: t("analyses.save.nameRequired") }]}>
          <Input data-testid="segment-name" maxLength={200} />
        </Form.Item>
        <Form.Item name="description" label={t("common.description")}>
          <Input.TextArea rows={2} maxLength={5000} />
        </Form.Item>
      </Form>
      <FormError error={error} testId="segment-create-error" />
    </SubmitModal>
  );
}
