// A person's events, newest first (users.timeline), a page at a time with "load more" (keyset paging on the
// API's `next` cursor); the event filter lives in the URL (?events=order_paid,search).
import { Button, Select, Space, Tag, Timeline, Typography } from "antd";
import { useEffect, useState } from "react";
import { useTranslation } from "react-i18next";
import { api, unwrap } from "../../api/client";
import type { components } from "../../api/schema";
import { useAuth } from "../../auth/AuthContext";
import { EmptyState, ErrorState, Loading } from "../../components/States";
import { useUrlParam } from "../../lib/urlState";
import { formatTime, formatValue, langOf } from "../segments/format";
import { sensitiveKind } from "./masking";

type Event = components["schemas"]["Event"];
export const TIMELINE_PAGE = 50;

export function UserTimeline({ userKey, unmask }: { userKey: string; unmask: boolean }) {
  const { t, i18n } = useTranslation();
  const lang = langOf(i18n.language);
  const { project } = useAuth();
  const [eventsParam, setEventsParam] = useUrlParam("events");
  const [events, setEvents] = useState<Event[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<unknown>();
  const [names, setNames] = useState<string[]>([]);

  const load = async (before: string | null, signal?: AbortSignal) => {
    setLoading(true);
    setError(undefined);
    try {
      const page = await unwrap(api.GET("/api/v1/users/{key}/timeline", {
        params: { path: { key: userKey }, query: { project, limit: TIMELINE_PAGE, before, events: eventsParam || null, unmask } },
        signal,
      }));
      if (signal?.aborted) return;
      setEvents((old) => (before ? [...old, ...page.events] : page.events));
      setNext(page.next);
    } catch (err) {
      if (!signal?.aborted) setError(err);
    } finally {
      if (!signal?.aborted) setLoading(false);
    }
  };

  useEffect(() => {
    const ctrl = new AbortController();
    setEvents([]);
    setNext(null);
    void load(null, ctrl.signal);
    return () => ctrl.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [userKey, project, eventsParam, unmask]);

  useEffect(() => {
    const ctrl = new AbortController();
    unwrap(api.GET("/api/v1/event-names", { params: { query: { project } }, signal: ctrl.signal }))
      .then((list) => setNames(list.map((e) => e.event)))
      .catch(() => undefined); // the filter stays free text without the list
    return () => ctrl.abort();
  }, [project]);

  const chosen = eventsParam ? eventsParam.split(",") : [];
  return (
    <div data-testid="user-timeline">
      <Select mode="tags" style={{ minWidth: 280, marginBottom: 12 }} value={chosen}
        placeholder={t("users.filterEvents")} options={names.map((n) => ({ value: n, label: n }))}
        onChange={(v: string[]) => setEventsParam(v.join(","))} data-testid="timeline-events" allowClear />
      {error ? <ErrorState error={error} onRetry={() => void load(null)} /> : null}
      {!error && events.length === 0 && !loading ? <EmptyState>{t("users.noEvents")}</EmptyState> : null}
      <div style={{ maxHeight: "70vh", overflowY: "auto", paddingTop: 4 }} data-testid="timeline-scroll">
      <Timeline
        items={events.map((e) => ({
          key: e.event_id,
          content: (
            <div data-testid="timeline-event">
              <Space size={8} wrap>
                <Typography.Text type="secondary">{formatTime(e.time)}</Typography.Text>
                <Typography.Text strong>{e.event}</Typography.Text>
                {e.lib && <Tag>{e.lib}</Tag>}
              </Space>
              <div>
                <Typography.Text type="secondary" style={{ fontSize: 12 }}>
                  {Object.entries(e.properties).map(([k, v]) =>
                    `${k}: ${formatValue(v, lang)}${!unmask && sensitiveKind(k) ? ` (${t("users.masked")})` : ""}`).join(" · ")}
                </Typography.Text>
              </div>
            </div>
          ),
        }))}
      />
      {loading && <Loading />}
      {next && !loading && (
        <Button onClick={() => void load(next)} data-testid="timeline-more" block>{t("users.loadMore")}</Button>
      )}
      {!next && !loading && events.length > 0 && (
        <Typography.Paragraph type="secondary" style={{ textAlign: "center" }}>{t("users.timelineEnd")}</Typography.Paragraph>
      )}
      </div>
    </div>
  );
}
