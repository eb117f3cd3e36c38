// Loading data for a view: the result, the error, whether it is loading, and a reload; a newer request or leaving
// the view aborts the older one (its AbortSignal reaches fetch, and the API cancels a running analysis when the
// console calls query.cancel).
import { useCallback, useEffect, useRef, useState } from "react";

export interface Loaded<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => void;
  cancel: () => void;
}

export function useApi<T>(load: (signal: AbortSignal) => Promise<T>, deps: readonly unknown[]): Loaded<T> {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<unknown>();
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  const controller = useRef<AbortController | null>(null);

  useEffect(() => {
    const ctrl = new AbortController();
    controller.current = ctrl;
    setLoading(true);
    setError(undefined);
    load(ctrl.signal)
      .then((value) => {
        if (!ctrl.signal.aborted) setData(value);
      })
      .catch((err: unknown) => {
        if (!ctrl.signal.aborted) setError(err);
      })
      .finally(() => {
        if (!ctrl.signal.aborted) setLoading(false);
      });
    return () => ctrl.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);

  const reload = useCallback(() => setTick((n) => n + 1), []);
  const cancel = useCallback(() => {
    controller.current?.abort();
    setLoading(false);
  }, []);
  return { data, error, loading, reload, cancel };
}
