// The settings' modal forms (new account, role, password, project, key): OK submits the form, the modal is busy
// while the request runs, and the API's refusal shows above the form (the form stays filled in to be corrected).
import { Modal } from "antd";
import { useState, type ReactNode } from "react";
import { useTranslation } from "react-i18next";
import { ErrorState } from "../../components/States";
import { testId } from "./requests";

export interface FormSubmit<V> {
  busy: boolean;
  error: unknown;
  /** The form's onFinish: runs the request; what it throws is kept as `error`. */
  submit: (values: V) => Promise<void>;
}

export function useFormSubmit<V>(run: (values: V) => Promise<void>): FormSubmit<V> {
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const submit = async (values: V) => {
    setBusy(true);
    setError(undefined);
    try {
      await run(values);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, submit };
}

export function FormModal(props: {
  open: boolean;
  title: string;
  okText: string;
  /** The OK button's data-testid. */
  okTestId: string;
  onClose: () => void;
  form: { submit: () => void };
  state: { busy: boolean; error: unknown };
  width?: number;
  children: ReactNode;
}) {
  const { t } = useTranslation();
  const { form, state } = props;
  return (
    <Modal
      open={props.open}
      title={props.title}
      onCancel={props.onClose}
      onOk={() => form.submit()}
      okText={props.okText}
      cancelText={t("common.cancel")}
      confirmLoading={state.busy}
      okButtonProps={testId(props.okTestId)}
      destroyOnHidden
      {...(props.width !== undefined ? { width: props.width } : {})}
    >
      {state.error !== undefined && <ErrorState error={state.error} />}
      {props.children}
    </Modal>
  );
}
