// Running an analysis: query.run under a fresh query id, so that "cancel" both aborts the request and asks the API
// to stop the query (query.cancel); a newer run or leaving the page cancels the older one the same way.
import { useCallback, useEffect, useRef, useState } from "react";
import { api, unwrap } from "../../api/client";
import { useAuth } from "../../auth/AuthContext";
import type { components } from "../../api/schema";
import type { Definition } from "./definition";

export type QueryReply = components["schemas"]["QueryResult"];

export interface RunState {
  reply: QueryReply | undefined;
  error: unknown;
  running: boolean;
  /** When the running query started (ms since the epoch), for the elapsed time. */
  startedAt: number | null;
}

/** How long the API may compute before giving up; the user can cancel sooner. */
export const TIMEOUT_S = 300;

const IDLE: RunState = { reply: undefined, error: undefined, running: false, startedAt: null };

export function newQueryId(): string {
  const random = Math.random().toString(36).slice(2, 10);
  return `console-${Date.now().toString(36)}-${random}`;
}

/** What runs a definition; the default is query.run, a saved insight's first run may use insights.run. */
export type Runner = (signal: AbortSignal, queryId: string, explain: boolean) => Promise<QueryReply>;

export function queryRunner(project: string, definition: Definition): Runner {
  return (signal, queryId, explain) =>
    unwrap(
      api.POST("/api/v1/query", {
        params: { query: { project } },
        body: { project, definition: definition as unknown as Record<string, unknown>, query_id: queryId, explain, timeout: TIMEOUT_S, use_cache: true },
        signal,
      }),
    );
}

export function useQueryRun() {
  const { project } = useAuth();
  const [state, setState] = useState<RunState>(IDLE);
  const current = useRef<{ controller: AbortController; queryId: string } | null>(null);

  const stop = useCallback(
    (tellApi: boolean) => {
      const running = current.current;
      if (!running) return;
      current.current = null;
      running.controller.abort();
      if (tellApi) {
        // The query may have finished meanwhile: a 404 then is expected and says nothing to the user.
        void api.DELETE("/api/v1/query/{query_id}", { params: { path: { query_id: running.queryId }, query: { project } } }).catch(() => {});
      }
    },
    [project],
  );

  const run = useCallback(
    async (runner: Runner, explain = false) => {
      stop(true);
      const controller = new AbortController();
      const queryId = newQueryId();
      current.current = { controller, queryId };
      setState((s) => ({ ...s, error: undefined, running: true, startedAt: Date.now() }));
      try {
        const reply = await runner(controller.signal, queryId, explain);
        if (!controller.signal.aborted) setState({ reply, error: undefined, running: false, startedAt: null });
      } catch (error) {
        if (!controller.signal.aborted) setState({ reply: undefined, error, running: false, startedAt: null });
      } finally {
        if (current.current?.controller === controller) current.current = null;
      }
    },
    [stop],
  );

  const cancel = useCallback(() => {
    stop(true);
    setState((s) => ({ ...s, running: false, startedAt: null }));
  }, [stop]);

  const clear = useCallback(() => {
    stop(true);
    setState(IDLE);
  }, [stop]);

  useEffect(() => () => stop(true), [stop]);
  return { ...state, run, cancel, clear };
}
