// Where a new tile goes on a dashboard's 12-column grid: beside the lowest row's tiles when there is room, else on
// a new row below everything.
export interface Tile {
  insight_id: number;
  x: number;
  y: number;
  w: number;
  h: number;
}

export const TILE_W = 6;
export const TILE_H = 4;
const COLUMNS = 12;

export function appendTile(layout: Tile[], insightId: number, w = TILE_W, h = TILE_H): Tile[] {
  if (layout.length === 0) return [{ insight_id: insightId, x: 0, y: 0, w, h }];
  const bottom = Math.max(...layout.map((t) => t.y + t.h));
  const lastRowY = Math.max(...layout.map((t) => t.y));
  const rowEnd = Math.max(...layout.filter((t) => t.y + t.h > lastRowY).map((t) => t.x + t.w));
  const fits = rowEnd + w <= COLUMNS && layout.every((t) => t.y + t.h <= lastRowY + h || t.x + t.w <= rowEnd);
  const tile = fits ? { insight_id: insightId, x: rowEnd, y: lastRowY, w, h } : { insight_id: insightId, x: 0, y: bottom, w, h };
  return [...layout, tile];
}
