// A view's state in the URL (deep links: what the screen shows can be shared and reloaded). Plain values are kept
// as they are; objects (an analysis definition) as JSON.
import { useCallback } from "react";
import { useSearchParams } from "react-router-dom";

export function useUrlParam(key: string, fallback = ""): [string, (value: string) => void] {
  const [params, setParams] = useSearchParams();
  const value = params.get(key) ?? fallback;
  const set = useCallback(
    (next: string) =>
      setParams(
        (prev) => {
          const copy = new URLSearchParams(prev);
          if (next === "" || next === fallback) copy.delete(key);
          else copy.set(key, next);
          return copy;
        },
        { replace: true },
      ),
    [key, fallback, setParams],
  );
  return [value, set];
}

export function useUrlJson<T>(key: string, fallback: T): [T, (value: T) => void] {
  const [raw, setRaw] = useUrlParam(key);
  let value = fallback;
  if (raw) {
    try {
      value = JSON.parse(raw) as T;
    } catch {
      value = fallback;
    }
  }
  const set = useCallback((next: T) => setRaw(JSON.stringify(next)), [setRaw]);
  return [value, set];
}
