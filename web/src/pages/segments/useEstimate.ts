// The live size of a rule being built: asked of segments.estimate a moment after the last change (debounced), the
// older request aborted when a newer one starts, nothing asked while a condition is still half filled.
import { useEffect, useState } from "react";
import { api, unwrap } from "../../api/client";
import type { components } from "../../api/schema";
import { isComplete, type Group } from "./rule/ruleModel";

export type Estimate = components["schemas"]["userloop__ops__segments__Estimate"];

export interface EstimateState {
  estimate?: Estimate;
  error?: unknown;
  loading: boolean;
  incomplete: boolean;
}

export const ESTIMATE_DELAY_MS = 600;

export function useEstimate(project: string, rule: Group, delay = ESTIMATE_DELAY_MS): EstimateState {
  const [state, setState] = useState<EstimateState>({ loading: false, incomplete: false });
  const key = JSON.stringify(rule);
  useEffect(() => {
    const parsed = JSON.parse(key) as Group;
    if (!isComplete(parsed)) {
      setState((s) => ({ ...s, loading: false, incomplete: true }));
      return;
    }
    const ctrl = new AbortController();
    setState((s) => ({ ...s, loading: true, incomplete: false }));
    const timer = setTimeout(() => {
      unwrap(api.POST("/api/v1/segments/estimate", {
        params: { query: { project } },
        body: { project, rule: parsed as unknown as Record<string, unknown>, timeout: 30 },
        signal: ctrl.signal,
      }))
        .then((estimate) => !ctrl.signal.aborted && setState({ estimate, loading: false, incomplete: false }))
        .catch((error: unknown) => !ctrl.signal.aborted && setState({ error, loading: false, incomplete: false }));
    }, delay);
    return () => {
      clearTimeout(timer);
      ctrl.abort();
    };
  }, [project, key, delay]);
  return state;
}
