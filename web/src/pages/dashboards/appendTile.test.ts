import { describe, expect, it } from "vitest";
import { appendTile } from "./grid";

describe("appendTile", () => {
  it("starts an empty dashboard at the top left", () => {
    expect(appendTile([], 7)).toEqual([{ insight_id: 7, x: 0, y: 0, w: 6, h: 4 }]);
  });
  it("puts a tile beside the last row's when there is room", () => {
    const layout = [{ insight_id: 1, x: 0, y: 0, w: 6, h: 4 }];
    expect(appendTile(layout, 2)[1]).toEqual({ insight_id: 2, x: 6, y: 0, w: 6, h: 4 });
  });
  it("starts a new row below everything when the last row is full", () => {
    const layout = [
      { insight_id: 1, x: 0, y: 0, w: 6, h: 4 },
      { insight_id: 2, x: 6, y: 0, w: 6, h: 6 },
    ];
    expect(appendTile(layout, 3)[2]).toEqual({ insight_id: 3, x: 0, y: 6, w: 6, h: 4 });
  });
  it("never overlaps or leaves the grid", () => {
    let layout = appendTile([], 1, 5, 3);
    for (let i = 2; i < 12; i++) layout = appendTile(layout, i, 1 + (i % 7), 1 + (i % 4));
    for (const a of layout) {
      expect(a.x + a.w).toBeLessThanOrEqual(12);
      for (const b of layout) {
        if (a === b) continue;
        const overlap = a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
        expect(overlap, JSON.stringify([a, b])).toBe(false);
      }
    }
  });
});
