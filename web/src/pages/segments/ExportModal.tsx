// Export a segment's members with chosen fields (GET /segments/{id}/export). Phone numbers and e-mail addresses
// are masked by the API unless the account holds the personal-data right and asks for them in clear.
import { Alert, Button, Checkbox, Form, InputNumber, Modal, Radio, Select, Space, Tag, Typography } from "antd";
import { useState } from "react";
import { useTranslation } from "react-i18next";
import { api, unwrap } from "../../api/client";
import { useAuth } from "../../auth/AuthContext";
import { ErrorState, Loading } from "../../components/States";
import { useApi } from "../../lib/useApi";
import { formatCount, langOf } from "./format";
import type { components } from "../../api/schema";

type ShownSegment = components["schemas"]["ShownSegment"];

/** Offer the browser a file to save. */
function saveBlob(blob: Blob, filename: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export function ExportModal({ open, segment, onClose }: { open: boolean; segment: ShownSegment; onClose: () => void }) {
  const { t, i18n } = useTranslation();
  const { project, can } = useAuth();
  const mayUnmask = can("pii");
  const fields = useApi(
    (signal) => (open ? unwrap(api.GET("/api/v1/segments/export-fields", { params: { query: { project } }, signal }))
      : Promise.resolve([])),
    [project, open],
  );
  const [chosen, setChosen] = useState<string[]>(["user_id"]);
  const [format, setFormat] = useState<"csv" | "parquet">("csv");
  const [unmask, setUnmask] = useState(false);
  const [limit, setLimit] = useState<number | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  const sensitive = new Set((fields.data ?? []).filter((f) => f.sensitive).map((f) => f.field));
  const maskedChosen = chosen.filter((f) => sensitive.has(f));

  const download = async () => {
    setBusy(true);
    setError(undefined);
    try {
      const blob = await unwrap(api.GET("/api/v1/segments/{segment_id}/export", {
        params: {
          path: { segment_id: segment.id },
          query: { project, fields: chosen.join(","), format, unmask: unmask && mayUnmask, limit },
        },
        parseAs: "blob",
      }));
      saveBlob(blob as Blob, `segment-${segment.id}.${format}`);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Modal open={open} onCancel={onClose} title={t("segments.export.title", { name: segment.name })} footer={null}
      width={640} destroyOnHidden>
      <div data-testid="export-dialog">
        {fields.loading ? <Loading /> : fields.error ? <ErrorState error={fields.error} onRetry={fields.reload} /> : (
          <Form layout="vertical">
            <Form.Item label={t("segments.export.fields")} required>
              <Select mode="multiple" value={chosen} onChange={setChosen} showSearch={{ optionFilterProp: "label" }}
                data-testid="export-fields"
                options={(fields.data ?? []).map((f) => ({
                  value: f.field,
                  label: f.field,
                  title: f.sensitive ? t("segments.export.sensitive") : undefined,
                }))}
                optionRender={(o) => (
                  <Space>
                    <span>{o.label}</span>
                    {sensitive.has(String(o.value)) && <Tag color="orange">{t("segments.export.personal")}</Tag>}
                  </Space>
                )}
              />
            </Form.Item>
            <Form.Item label={t("segments.export.format")}>
              <Radio.Group value={format} onChange={(e) => setFormat(e.target.value)}
                options={[{ value: "csv", label: "CSV" }, { value: "parquet", label: "Parquet" }]} />
            </Form.Item>
            <Form.Item label={t("segments.export.limit")}>
              <InputNumber min={1} precision={0} value={limit} onChange={(n) => setLimit(n ?? null)}
                placeholder={t("common.all")} />
            </Form.Item>
            {mayUnmask ? (
              <Form.Item>
                <Checkbox checked={unmask} onChange={(e) => setUnmask(e.target.checked)} data-testid="export-unmask">
                  {t("segments.export.unmask")}
                </Checkbox>
              </Form.Item>
            ) : null}
            {maskedChosen.length > 0 && !(unmask && mayUnmask) && (
              <Alert type="info" showIcon style={{ marginBottom: 12 }} data-testid="export-masked"
                title={t("segments.export.willMask", { fields: maskedChosen.join(", ") })}
                description={mayUnmask ? undefined : t("common.masked")} />
            )}
            {error ? <ErrorState error={error} /> : null}
            <Space>
              <Button type="primary" loading={busy} disabled={chosen.length === 0} onClick={download}
                data-testid="export-download">{t("common.download")}</Button>
              <Typography.Text type="secondary">{t("segments.export.members", { n: formatCount(segment.size, langOf(i18n.language)) })}</Typography.Text>
            </Space>
          </Form>
        )}
      </div>
    </Modal>
  );
}
