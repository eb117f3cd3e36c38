// The form that names a dashboard (create or rename): name (1–100 characters) and description; the API's message
// when it refuses (a name already taken).
import { Alert, Form, Input } from "antd";
import { useEffect } from "react";
import { useTranslation } from "react-i18next";
import { SubmitModal } from "../../components/SubmitModal";
import { useModalSubmit } from "../../components/useModalSubmit";

export interface Naming {
  name: string;
  description: string;
}

export function NameModal(props: {
  open: boolean;
  title: string;
  initial: Naming;
  onSave: (values: Naming) => Promise<void>;
  onClose: () => void;
}) {
  const { t } = useTranslation();
  const [form] = Form.useForm<Naming>();
  const { open, initial } = props;
  const { busy, error, setError, submit } = useModalSubmit(form, async (values) => {
    await props.onSave({ name: values.name.trim(), description: values.description ?? "" });
    props.onClose();
  });

  useEffect(() => {
    if (open) {
      form.setFieldsValue(initial);
      setError(null);
    }
  }, [open, initial, form, setError]);

  return (
    <SubmitModal open={open} title={props.title} okText={t("common.save")} okTestId="dashboard-save" busy={busy}
      onOk={() => void submit()} onClose={props.onClose}>
      {error && <Alert type="error" showIcon title={error} style={{ marginBottom: 16 }} data-testid="error" />}
      <Form form={form} layout="vertical" requiredMark={false} onFinish={() => void submit()}>
        <Form.Item
          name="name"
          label={t("common.name")}
          rules={[
            { required: true, whitespace: true, message: t("dashboards.nameRequired") },
            { max: 100, message: t("dashboards.nameTooLong") },
          ]}
        >
          <Input autoFocus maxLength={100} data-testid="dashboard-name-input" />
        </Form.Item>
        <Form.Item name="description" label={t("common.description")}>
          <Input.TextArea rows={3} maxLength={2000} data-testid="dashboard-description-input" />
        </Form.Item>
      </Form>
    </SubmitModal>
  );
}
