// The one way a modal submits its form: validate, run the API call with the modal busy, and keep the API's
// message (shown by FormError) when it refuses. A form that does not validate stays open with its field errors.
import type { FormInstance } from "antd";
import { useState } from "react";

export function useModalSubmit<V>(form: FormInstance<V>, run: (values: V) => Promise<void>) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const submit = async () => {
    const values = await form.validateFields();
    setBusy(true);
    setError(null);
    try {
      await run(values);
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, setError, submit };
}
