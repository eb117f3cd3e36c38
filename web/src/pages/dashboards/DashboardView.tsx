// A dashboard: its tiles on a 12-column grid, each running its saved insight. A writer (analyse right) adds
// insights as tiles, moves, resizes and removes them with simple controls; every change is saved at once (the
// whole layout, as the API takes it) and the API's message shows when it refuses.
import { ArrowLeftOutlined, EditOutlined, PlusOutlined, ReloadOutlined } from "@ant-design/icons";
import { App, Button, Flex, Modal, Select, Typography } from "antd";
import { useCallback, useEffect, useMemo, useState } from "react";
import { useTranslation } from "react-i18next";
import { Link, useParams } from "react-router-dom";
import { api, unwrap } from "../../api/client";
import type { components } from "../../api/schema";
import { useAuth } from "../../auth/AuthContext";
import { EmptyState, ErrorState, Loading } from "../../components/States";
import { useApi } from "../../lib/useApi";
import { DashboardTile, GAP, ROW_HEIGHT } from "./DashboardTile";
import { addTile, arrange, COLUMNS, removeTile, stored, type Move, type Tile } from "./grid";
import { NameModal, type Naming } from "./NameModal";

type ShownTile = components["schemas"]["ShownTile"];

/** Where a tile sits in the CSS grid (lines start at 1). */
function placement(tile: Tile): React.CSSProperties {
  return { gridColumn: `${tile.x + 1} / span ${tile.w}`, gridRow: `${tile.y + 1} / span ${tile.h}`, minWidth: 0 };
}

/** React keys that survive the removal of another tile: the insight and how many tiles before show it too. */
function tileKeys(tiles: Tile[]): string[] {
  const seen = new Map<number, number>();
  return tiles.map((tile) => {
    const n = seen.get(tile.insight_id) ?? 0;
    seen.set(tile.insight_id, n + 1);
    return `${tile.insight_id}:${n}`;
  });
}

export function DashboardView() {
  const { t, i18n } = useTranslation();
  const { project, can } = useAuth();
  const { message } = App.useApp();
  const id = Number(useParams().dashboardId);
  const [refresh, setRefresh] = useState(0);
  const [tiles, setTiles] = useState<ShownTile[]>([]);
  const [busy, setBusy] = useState(false);
  const [adding, setAdding] = useState(false);
  const [renaming, setRenaming] = useState(false);
  const writer = can("analyse");
  const search = `?project=${encodeURIComponent(project)}`;

  const board = useApi(
    (signal) =>
      unwrap(
        api.GET("/api/v1/dashboards/{dashboard_id}", {
          params: { path: { dashboard_id: id }, query: { project } },
          signal,
        }),
      ),
    [project, id],
  );
  const events = useApi(
    (signal) => unwrap(api.GET("/api/v1/event-names", { params: { query: { project } }, signal })),
    [project],
  );
  useEffect(() => {
    if (board.data) setTiles(board.data.layout);
  }, [board.data]);

  const eventName = useCallback(
    (name: string) => {
      const row = events.data?.find((e) => e.event === name);
      const shown = i18n.language === "en" ? row?.display_en : row?.display_zh;
      return shown || name;
    },
    [events.data, i18n.language],
  );

  /** Save `next` as the layout; the screen shows it at once and goes back to the saved one if the API refuses. */
  const saveLayout = async (next: ShownTile[]) => {
    const before = tiles;
    setTiles(next);
    setBusy(true);
    try {
      await unwrap(
        api.PATCH("/api/v1/dashboards/{dashboard_id}", {
          params: { path: { dashboard_id: id }, query: { project } },
          body: { project, layout: stored(next) },
        }),
      );
    } catch (err) {
      setTiles(before);
      message.error(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };

  const rename = async (values: Naming) => {
    await unwrap(
      api.PATCH("/api/v1/dashboards/{dashboard_id}", {
        params: { path: { dashboard_id: id }, query: { project } },
        body: { project, ...values },
      }),
    );
    message.success(t("common.saved"));
    board.reload();
  };

  if (board.error) return <ErrorState error={board.error} onRetry={board.reload} />;
  if (board.loading && !board.data) return <Loading />;
  if (!board.data) return <EmptyState />;
  const keys = tileKeys(tiles);

  return (
    <div data-testid="dashboard-view">
      <Flex justify="space-between" align="center" wrap gap={12} style={{ marginBottom: 16 }}>
        <Flex align="center" gap={12}>
          <Link to={`/dashboards${search}`} aria-label={t("common.back")} data-testid="dashboard-back">
            <ArrowLeftOutlined />
          </Link>
          <div>
            <Typography.Title level={3} style={{ margin: 0 }} data-testid="dashboard-title">
              {board.data.name}
            </Typography.Title>
            {board.data.description && <Typography.Text type="secondary">{board.data.description}</Typography.Text>}
          </div>
        </Flex>
        <Flex gap={8} wrap>
          <Button icon={<ReloadOutlined />} onClick={() => setRefresh((n) => n + 1)} data-testid="dashboard-refresh">
            {t("common.refresh")}
          </Button>
          {writer && (
            <>
              <Button icon={<EditOutlined />} onClick={() => setRenaming(true)} data-testid="dashboard-rename">
                {t("dashboards.rename")}
              </Button>
              <Button
                type="primary"
                icon={<PlusOutlined />}
                onClick={() => setAdding(true)}
                data-testid="dashboard-add-tile"
              >
                {t("dashboards.addTile")}
              </Button>
            </>
          )}
        </Flex>
      </Flex>
      {tiles.length === 0 ? (
        <EmptyState>{t(writer ? "dashboards.noTilesWriter" : "dashboards.noTiles")}</EmptyState>
      ) : (
        <div
          data-testid="dashboard-grid"
          style={{
            display: "grid",
            gridTemplateColumns: `repeat(${COLUMNS}, minmax(0, 1fr))`,
            gridAutoRows: ROW_HEIGHT,
            gap: GAP,
          }}
        >
          {tiles.map((tile, i) => (
            <div key={keys[i]} style={placement(tile)}>
              <DashboardTile
                index={i}
                insightId={tile.insight_id}
                name={tile.insight_name}
                kind={tile.insight_kind}
                h={tile.h}
                project={project}
                refresh={refresh}
                eventName={eventName}
                editable={writer}
                busy={busy}
                onMove={(move: Move) => void saveLayout(arrange(tiles, i, move))}
                onRemove={() => void saveLayout(removeTile(tiles, i))}
              />
            </div>
          ))}
        </div>
      )}
      <AddTileModal
        open={adding}
        project={project}
        onClose={() => setAdding(false)}
        onAdd={async (insight) => {
          const next = addTile(stored(tiles), insight.id);
          const shown = next.map((tile, i) => ({
            ...tile,
            insight_name: tiles[i]?.insight_name ?? insight.name,
            insight_kind: tiles[i]?.insight_kind ?? insight.kind,
          }));
          await saveLayout(shown);
        }}
      />
      <NameModal
        open={renaming}
        title={t("dashboards.rename")}
        initial={{ name: board.data.name, description: board.data.description }}
        onSave={rename}
        onClose={() => setRenaming(false)}
      />
    </div>
  );
}

type Insight = components["schemas"]["Insight"];

function AddTileModal(props: {
  open: boolean;
  project: string;
  onClose: () => void;
  onAdd: (insight: Insight) => Promise<void>;
}) {
  const { t } = useTranslation();
  const [chosen, setChosen] = useState<number | null>(null);
  const { open, project } = props;
  const insights = useApi(
    (signal) =>
      open ? unwrap(api.GET("/api/v1/insights", { params: { query: { project } }, signal })) : Promise.resolve([]),
    [open, project],
  );
  const options = useMemo(
    () =>
      (insights.data ?? []).map((i) => ({
        value: i.id,
        label: `${i.name} · ${t(`dashboards.kinds.${i.kind}`, { defaultValue: i.kind })}`,
      })),
    [insights.data, t],
  );
  const picked = insights.data?.find((i) => i.id === chosen);

  return (
    <Modal
      open={open}
      title={t("dashboards.addTile")}
      okText={t("common.add")}
      cancelText={t("common.cancel")}
      okButtonProps={{ disabled: !picked, ...({ "data-testid": "dashboard-add-tile-ok" } as object) }}
      onOk={() => {
        if (picked) void props.onAdd(picked).then(props.onClose);
      }}
      onCancel={props.onClose}
      destroyOnHidden
    >
      {insights.error ? (
        <ErrorState error={insights.error} onRetry={insights.reload} />
      ) : !insights.loading && options.length === 0 ? (
        <EmptyState>{t("dashboards.noInsights")}</EmptyState>
      ) : (
        <Select
          showSearch={{ optionFilterProp: "label" }}
          loading={insights.loading}
          value={chosen ?? undefined}
          onChange={setChosen}
          options={options}
          placeholder={t("dashboards.pickInsight")}
          style={{ width: "100%" }}
          aria-label={t("dashboards.pickInsight")}
          data-testid="dashboard-insight-select"
        />
      )}
    </Modal>
  );
}
