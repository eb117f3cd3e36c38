// Every string a user reads exists in both languages: the catalogs have the same keys, no empty value, the same
// {{placeholders}}; every literal key the source passes to t() exists.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { catalogs } from ".";

function flatten(value: unknown, prefix = ""): Record<string, string> {
  if (typeof value === "string") return { [prefix]: value };
  const out: Record<string, string> = {};
  for (const [key, inner] of Object.entries(value as Record<string, unknown>)) {
    Object.assign(out, flatten(inner, prefix ? `${prefix}.${key}` : key));
  }
  return out;
}

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return /\.tsx?$/.test(name) && !name.endsWith(".test.ts") && !name.endsWith(".d.ts") ? [path] : [];
  });
}

const placeholders = (text: string) => [...text.matchAll(/{{\s*(\w+)\s*}}/g)].map((m) => m[1]).sort();

describe("translations", () => {
  const all = catalogs();
  const zh = flatten(all["zh-CN"]);
  const en = flatten(all.en);

  it("have the same keys in Chinese and English", () => {
    expect(Object.keys(zh).sort()).toEqual(Object.keys(en).sort());
  });

  it("have no empty string and the same placeholders", () => {
    for (const [key, text] of Object.entries(en)) {
      expect(text.trim(), key).not.toBe("");
      expect(zh[key]?.trim(), key).not.toBe("");
      expect(placeholders(zh[key] ?? ""), key).toEqual(placeholders(text));
    }
  });

  it("hold every literal key the source asks for", () => {
    const missing: string[] = [];
    for (const file of sources(join(__dirname, ".."))) {
      const text = readFileSync(file, "utf8");
      for (const match of text.matchAll(/\bt\(\s*["']([A-Za-z0-9_.-]+)["']/g)) {
        const key = match[1];
        const isPlural = en[`${key}_one`] !== undefined || en[`${key}_other`] !== undefined;
        if (en[key] === undefined && !isPlural) missing.push(`${file}: ${key}`);
      }
    }
    expect(missing).toEqual([]);
  });
});
