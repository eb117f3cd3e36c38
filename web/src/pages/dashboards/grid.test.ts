import { describe, expect, it } from "vitest";
import { addTile, arrange, compact, removeTile, stored, type Tile } from "./grid";

const tile = (insight_id: number, x: number, y: number, w: number, h: number): Tile => ({ insight_id, x, y, w, h });
const noOverlap = (tiles: Tile[]) =>
  tiles.every((a, i) =>
    tiles.every((b, j) => i === j || a.x + a.w <= b.x || b.x + b.w <= a.x || a.y + a.h <= b.y || b.y + b.h <= a.y),
  );

describe("compact", () => {
  it("lifts tiles into empty rows and keeps their list positions", () => {
    expect(compact([tile(1, 0, 5, 6, 2), tile(2, 6, 9, 6, 3), tile(3, 0, 20, 12, 1)])).toEqual([
      tile(1, 0, 0, 6, 2), tile(2, 6, 0, 6, 3), tile(3, 0, 3, 12, 1),
    ]);
  });
});

describe("arrange", () => {
  const column = [tile(1, 0, 0, 6, 4), tile(2, 0, 4, 6, 2)];

  it("swaps a tile with the one above or below", () => {
    expect(arrange(column, 1, "up")).toEqual([tile(1, 0, 2, 6, 4), tile(2, 0, 0, 6, 2)]);
    expect(arrange(column, 0, "down")).toEqual([tile(1, 0, 2, 6, 4), tile(2, 0, 0, 6, 2)]);
    expect(arrange(column, 0, "up")).toBe(column);
  });

  it("moves sideways within the grid, pushing an overlapped tile down", () => {
    const row = [tile(1, 0, 0, 6, 2), tile(2, 6, 0, 6, 2)];
    expect(arrange([tile(1, 0, 0, 6, 2)], 0, "left")).toEqual([tile(1, 0, 0, 6, 2)]);
    const moved = arrange(row, 0, "right");
    expect(moved[0]).toEqual(tile(1, 1, 0, 6, 2));
    expect(moved[1]).toEqual(tile(2, 6, 2, 6, 2));
    expect(noOverlap(moved)).toBe(true);
  });

  it("resizes within 1..12 columns and rows", () => {
    expect(arrange([tile(1, 6, 0, 6, 2)], 0, "wider")).toEqual([tile(1, 5, 0, 7, 2)]);
    expect(arrange([tile(1, 0, 0, 12, 2)], 0, "wider")).toEqual([tile(1, 0, 0, 12, 2)]);
    expect(arrange([tile(1, 0, 0, 1, 2)], 0, "narrower")).toEqual([tile(1, 0, 0, 1, 2)]);
    expect(arrange([tile(1, 0, 0, 3, 1)], 0, "shorter")).toEqual([tile(1, 0, 0, 3, 1)]);
    expect(arrange(column, 0, "taller")).toEqual([tile(1, 0, 0, 6, 5), tile(2, 0, 5, 6, 2)]);
  });

  it("never overlaps, whatever the sequence of moves", () => {
    let tiles: Tile[] = [tile(1, 0, 0, 4, 3), tile(2, 4, 0, 8, 2), tile(3, 0, 3, 12, 2), tile(4, 6, 5, 3, 4)];
    const moves = ["left", "right", "up", "down", "wider", "narrower", "taller", "shorter"] as const;
    for (let step = 0; step < 200; step++) {
      tiles = arrange(tiles, (step * 7) % tiles.length, moves[(step * 5) % moves.length]);
      expect(noOverlap(tiles)).toBe(true);
      expect(tiles.every((t) => t.x >= 0 && t.x + t.w <= 12 && t.w >= 1 && t.h >= 1 && t.h <= 12)).toBe(true);
    }
  });
});

describe("add and remove", () => {
  it("adds at the bottom and closes the gap of a removed tile", () => {
    const two = addTile([tile(1, 0, 0, 12, 3)], 9);
    expect(two[1]).toEqual(tile(9, 0, 3, 6, 4));
    expect(removeTile(two, 0)).toEqual([tile(9, 0, 0, 6, 4)]);
    const shown = [{ ...tile(1, 0, 0, 1, 1), insight_name: "n", insight_kind: "funnel" }];
    expect(stored(shown)).toEqual([tile(1, 0, 0, 1, 1)]);
  });
});
