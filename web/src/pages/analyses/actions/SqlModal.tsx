// "Show the SQL": the statements the analysis ran (query.run with explain, which bypasses the cache).
import { Modal, Typography } from "antd";
import { useTranslation } from "react-i18next";
import { ErrorState, Loading } from "../../../components/States";
import { useApi } from "../../../lib/useApi";

interface Props {
  open: boolean;
  onClose: () => void;
  /** Runs the analysis with explain and returns its statements by name. */
  load: (signal: AbortSignal) => Promise<Record<string, string>>;
}

function Statements({ load }: { load: Props["load"] }) {
  const { t } = useTranslation();
  const { data, error, loading, reload, cancel } = useApi(load, []);
  if (loading) return <Loading computing onCancel={cancel} />;
  if (error) return <ErrorState error={error} onRetry={reload} />;
  return (
    <div data-testid="analysis-sql-text">
      {Object.entries(data ?? {}).map(([name, sql]) => (
        <div key={name} style={{ marginBottom: 16 }}>
          <Typography.Text strong>{t("analyses.sql.statement", { name })}</Typography.Text>
          <Typography.Paragraph copyable={{ text: sql }}>
            <pre style={{ whiteSpace: "pre-wrap", wordBreak: "break-word", maxHeight: 360, overflow: "auto" }}>{sql}</pre>
          </Typography.Paragraph>
        </div>
      ))}
    </div>
  );
}

export function SqlModal({ open, onClose, load }: Props) {
  const { t } = useTranslation();
  return (
    <Modal open={open} onCancel={onClose} footer={null} width={900} title={t("common.sql")} destroyOnHidden>
      {open && <Statements load={load} />}
    </Modal>
  );
}
