// Arranging a dashboard's tiles on its 12-column grid with simple controls (move left/right/up/down, wider,
// narrower, taller, shorter, remove, add), apart from React. After every change the layout is compacted
// upwards, the way dashboards usually settle: each tile, taken from the top, rises until it rests on a tile above
// it, so tiles never overlap and no row is left empty.

export const COLUMNS = 12;
export const MAX_HEIGHT = 12;

export interface Tile {
  insight_id: number;
  x: number;
  y: number;
  w: number;
  h: number;
}

export type Move = "left" | "right" | "up" | "down" | "wider" | "narrower" | "taller" | "shorter";

const overlapsColumns = (a: Tile, b: Tile) => a.x < b.x + b.w && b.x < a.x + a.w;
const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));

/** The layout compacted upwards; `order` holds the sort key of each tile's y (a move uses half steps to pass
 * another tile). The tiles keep their positions in the list (a tile's index is its identity on screen). */
export function compact<T extends Tile>(tiles: T[], order: number[] = tiles.map((t) => t.y)): T[] {
  const indices = tiles.map((_, i) => i).sort((a, b) => order[a] - order[b] || tiles[a].x - tiles[b].x || a - b);
  const placed: T[] = [];
  const out = tiles.slice();
  for (const i of indices) {
    const tile = tiles[i];
    const y = placed.filter((p) => overlapsColumns(p, tile)).reduce((top, p) => Math.max(top, p.y + p.h), 0);
    const settled = { ...tile, y };
    placed.push(settled);
    out[i] = settled;
  }
  return out;
}

/** The nearest tile above (dir -1) or below (dir 1) tile `i` that shares a column with it, or -1. */
function neighbour(tiles: Tile[], i: number, dir: -1 | 1): number {
  const me = tiles[i];
  let best = -1;
  tiles.forEach((t, j) => {
    if (j === i || !overlapsColumns(t, me)) return;
    const ahead = dir < 0 ? t.y < me.y : t.y > me.y;
    if (ahead && (best < 0 || (dir < 0 ? t.y > tiles[best].y : t.y < tiles[best].y))) best = j;
  });
  return best;
}

/** The layout after moving or resizing tile `i` (a move that cannot happen returns the layout unchanged). */
export function arrange<T extends Tile>(tiles: T[], i: number, move: Move): T[] {
  const tile = tiles[i];
  if (!tile) return tiles;
  const order = tiles.map((t) => t.y);
  const next = tiles.slice();
  switch (move) {
    case "left":
    case "right": {
      const x = clamp(tile.x + (move === "left" ? -1 : 1), 0, COLUMNS - tile.w);
      next[i] = { ...tile, x };
      order[i] -= 0.5; // it keeps its row; a tile it now overlaps gives way
      break;
    }
    case "up":
    case "down": {
      const other = neighbour(tiles, i, move === "up" ? -1 : 1);
      if (other < 0) return tiles;
      order[i] = tiles[other].y + (move === "up" ? -0.5 : 0.5);
      break;
    }
    case "wider": {
      if (tile.w >= COLUMNS) return tiles;
      const x = tile.x + tile.w + 1 > COLUMNS ? tile.x - 1 : tile.x;
      next[i] = { ...tile, x, w: tile.w + 1 };
      order[i] -= 0.5;
      break;
    }
    case "narrower":
      if (tile.w <= 1) return tiles;
      next[i] = { ...tile, w: tile.w - 1 };
      break;
    case "taller":
    case "shorter": {
      const h = clamp(tile.h + (move === "taller" ? 1 : -1), 1, MAX_HEIGHT);
      next[i] = { ...tile, h };
      break;
    }
  }
  return compact(next, order);
}

/** The layout without tile `i`. */
export function removeTile<T extends Tile>(tiles: T[], i: number): T[] {
  return compact(tiles.filter((_, j) => j !== i));
}

/** The layout with a new tile for `insightId` at the bottom, half the grid wide. */
export function addTile(tiles: Tile[], insightId: number, w = 6, h = 4): Tile[] {
  const bottom = tiles.reduce((top, t) => Math.max(top, t.y + t.h), 0);
  return compact([...tiles, { insight_id: insightId, x: 0, y: bottom, w, h }]);
}

/** The layout with a new tile for `insightId` placed beside the lowest row's tiles when there is room, else on a
 * new row below everything (no compacting: the tiles already there stay where they are). */
export function appendTile(tiles: Tile[], insightId: number, w = 6, h = 4): Tile[] {
  if (tiles.length === 0) return [{ insight_id: insightId, x: 0, y: 0, w, h }];
  const bottom = Math.max(...tiles.map((t) => t.y + t.h));
  const lastRowY = Math.max(...tiles.map((t) => t.y));
  const rowEnd = Math.max(...tiles.filter((t) => t.y + t.h > lastRowY).map((t) => t.x + t.w));
  const fits = rowEnd + w <= COLUMNS && tiles.every((t) => t.y + t.h <= lastRowY + h || t.x + t.w <= rowEnd);
  const tile = fits ? { insight_id: insightId, x: rowEnd, y: lastRowY, w, h } : { insight_id: insightId, x: 0, y: bottom, w, h };
  return [...tiles, tile];
}

/** Only the fields the API stores (a shown tile also carries its insight's name and kind). */
export function stored(tiles: Tile[]): Tile[] {
  return tiles.map(({ insight_id, x, y, w, h }) => ({ insight_id, x, y, w, h }));
}
