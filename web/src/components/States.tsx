// The three states every data view has besides its data: loading (with a cancel for long analyses), empty, and
// error with the API's own message.
import { Alert, Button, Empty, Space, Spin } from "antd";
import type { ReactNode } from "react";
import { useTranslation } from "react-i18next";
import { ApiError } from "../api/client";

export function Loading({ computing, onCancel }: { computing?: boolean; onCancel?: () => void }) {
  const { t } = useTranslation();
  return (
    <div style={{ padding: 48, textAlign: "center" }} data-testid="loading" aria-busy="true">
      <Space orientation="vertical">
        <Spin />
        <span>{computing ? t("common.computing") : t("common.loading")}</span>
        {onCancel && (
          <Button onClick={onCancel} data-testid="cancel-query">
            {t("common.cancel")}
          </Button>
        )}
      </Space>
    </div>
  );
}

export function EmptyState({ children }: { children?: ReactNode }) {
  const { t } = useTranslation();
  return <Empty description={children ?? t("common.empty")} data-testid="empty" />;
}

export function ErrorState({ error, onRetry }: { error: unknown; onRetry?: () => void }) {
  const { t } = useTranslation();
  const message = error instanceof ApiError || error instanceof Error ? error.message : String(error);
  const hint = error instanceof ApiError ? error.hint : undefined;
  return (
    <Alert
      type="error"
      showIcon
      data-testid="error"
      title={t("common.error")}
      description={
        <div>
          <div>{message}</div>
          {hint && <div>{hint}</div>}
        </div>
      }
      action={onRetry && <Button onClick={onRetry}>{t("common.retry")}</Button>}
    />
  );
}

/** The API's message under a modal's form when it refused the submit (nothing when there is none). */
export function FormError({ error, testId }: { error: string | null; testId: string }) {
  if (!error) return null;
  return (
    <div role="alert" style={{ color: "#cf1322" }} data-testid={testId}>
      {error}
    </div>
  );
}
