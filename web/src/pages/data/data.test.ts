import { describe, expect, it } from "vitest";
import { safeFilename, mappingParam } from "./upload";
import { volumeDefinitions, volumesFrom } from "./volumes";

describe("event volumes", () => {
  const events = [
    { event: "app_start", active: true },
    { event: "push_received", active: false },
    ...Array.from({ length: 27 }, (_, i) => ({ event: `p${i}`, active: false })),
  ];

  it("counts active events by breakdown and passive ones a series each, 26 at a time", () => {
    const defs = volumeDefinitions(events);
    expect(defs).toHaveLength(3);
    expect(defs[0]).toMatchObject({ series: [{ event: "$any" }], breakdown: { property: "event" } });
    expect((defs[1].series as unknown[]).length).toBe(26);
    expect((defs[2].series as unknown[]).length).toBe(2);
    const results = [
      { series: [{ breakdown: "app_start", total: 40 }, { breakdown: "$other", total: 3 }] },
      { series: [{ total: 5 }, { total: 1 }] },
      { series: [{ total: 2 }, { total: 9 }] },
    ];
    const volumes = volumesFrom(defs, results);
    expect(volumes.get("app_start")).toBe(40);
    expect(volumes.get("push_received")).toBe(5);
    expect(volumes.get("p0")).toBe(1);
    expect(volumes.get("p26")).toBe(9);
    expect(volumes.has("$other")).toBe(false);
  });

  it("asks nothing for an empty registry", () => {
    expect(volumeDefinitions([])).toEqual([]);
  });
});

describe("upload", () => {
  it("makes file names the route accepts and keeps the suffix", () => {
    expect(safeFilename("events.jsonl.gz")).toBe("events.jsonl.gz");
    expect(safeFilename("订单 2026.CSV")).toBe("___2026.csv");
    expect(safeFilename(".hidden")).toBe("hidden");
    expect(safeFilename("x".repeat(300) + ".csv")).toHaveLength(200);
    for (const name of ["a b.csv", "...", "ü.parquet", "-x.csv", "名.csv"]) {
      expect(safeFilename(name)).toMatch(/^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,199}$/);
    }
  });

  it("checks the column mapping is a JSON object", () => {
    expect(mappingParam("")).toBe("{}");
    expect(mappingParam('{"time": "ts"}')).toBe('{"time":"ts"}');
    expect(mappingParam("[1]")).toBeNull();
    expect(mappingParam("{oops")).toBeNull();
  });
});
