// A modal whose OK button submits a form (see useModalSubmit): the OK button carries a data-testid and spins
// while the request runs; Cancel closes; the content goes when the modal closes.
import { Modal, type ButtonProps } from "antd";
import type { ReactNode } from "react";
import { useTranslation } from "react-i18next";

export function SubmitModal(props: {
  open: boolean;
  title: string;
  okText: string;
  /** The OK button's data-testid. */
  okTestId: string;
  busy: boolean;
  onOk: () => void;
  onClose: () => void;
  children: ReactNode;
}) {
  const { t } = useTranslation();
  return (
    <Modal
      open={props.open}
      title={props.title}
      onCancel={props.onClose}
      onOk={props.onOk}
      okText={props.okText}
      cancelText={t("common.cancel")}
      confirmLoading={props.busy}
      okButtonProps={{ "data-testid": props.okTestId } as ButtonProps}
      destroyOnHidden
    >
      {props.children}
    </Modal>
  );
}
