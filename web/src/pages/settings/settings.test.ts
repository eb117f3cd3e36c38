import { describe, expect, it } from "vitest";
import { diffJson, flatten, showValue } from "./auditDiff";
import { dayStart, formatInstant, nextDay } from "./format";
import { accountRequest, grantRequest, keyRequest } from "./requests";
import { visibleTabs } from "./tabs";

describe("the audit diff", () => {
  it("lists changed, removed and added leaves by path", () => {
    const before = { name: "vip", rule: { min: 3, events: ["buy"] }, note: "x" };
    const after = { name: "vip", rule: { min: 5, events: ["buy", "view"] }, owner: null };
    expect(diffJson(before, after)).toEqual([
      { path: "rule.min", kind: "changed", before: 3, after: 5 },
      { path: "note", kind: "removed", before: "x" },
      { path: "rule.events[1]", kind: "added", after: "view" },
      { path: "owner", kind: "added", after: null },
    ]);
  });

  it("treats a missing side as all added or all removed, and equal sides as no change", () => {
    expect(diffJson(null, { a: 1 })).toEqual([{ path: "a", kind: "added", after: 1 }]);
    expect(diffJson({ a: 1 }, null)).toEqual([{ path: "a", kind: "removed", before: 1 }]);
    expect(diffJson({ a: [1, { b: 2 }] }, { a: [1, { b: 2 }] })).toEqual([]);
    expect(flatten({ a: {}, b: [] })).toEqual(new Map<string, unknown>([["a", {}], ["b", []]]));
  });

  it("shows values on one short line", () => {
    expect(showValue("<b>x</b>")).toBe('"<b>x</b>"');
    expect(showValue("y".repeat(300), 10)).toBe('"yyyyyyyy…');
    expect(showValue(undefined)).toBe("");
  });
});

describe("instants in the project's zone", () => {
  it("reads an instant without offset as UTC", () => {
    expect(formatInstant("2026-12-07T09:04:59.773138", "Asia/Shanghai")).toBe("2026-12-07 17:04:59");
    expect(formatInstant("2026-12-07T09:04:59+00:00", "UTC")).toBe("2026-12-07 09:04:59");
    expect(formatInstant(null, "UTC")).toBe("—");
    expect(formatInstant("soon", "UTC")).toBe("soon");
  });

  it("finds where a local day starts", () => {
    expect(dayStart("2026-12-07", "Asia/Shanghai")).toBe("2026-12-06T16:00:00.000Z");
    expect(dayStart("2026-07-01", "America/New_York")).toBe("2026-07-01T04:00:00.000Z");
    expect(dayStart("2026-07-01", "Not/AZone")).toBe("2026-07-01T00:00:00.000Z");
    expect(nextDay("2026-12-31")).toBe("2027-01-01");
  });
});

describe("request builders", () => {
  it("makes a write key without rights and an API token for every project", () => {
    expect(keyRequest({ kind: "write", name: " shop ", project: "default", rights: ["admin"] })).toEqual({
      kind: "write", name: "shop", project: "default", rights: null,
    });
    expect(keyRequest({ kind: "admin", name: "bi", project: "*", rights: ["read", "analyse"] })).toEqual({
      kind: "admin", name: "bi", project: null, rights: ["read", "analyse"],
    });
  });

  it("makes an account with one role per project, in lower case", () => {
    expect(
      accountRequest({
        login: " Li.Ming ",
        name: "李明",
        password: "a long secret",
        roles: [
          { project: "default", role: "analyst" },
          { project: "default", role: "admin" },
          { project: "*", role: "viewer" },
        ],
      }),
    ).toEqual({
      login: "li.ming", name: "李明", password: "a long secret",
      roles: [{ project: "default", role: "analyst" }, { project: null, role: "viewer" }],
    });
  });

  it("gives or takes a role", () => {
    expect(grantRequest({ project: "shop", role: "operator" })).toEqual({ project: "shop", role: "operator", revoke: false });
    expect(grantRequest({ project: "*", role: "none" })).toEqual({ project: null, revoke: true });
  });
});

describe("the tabs a role sees", () => {
  it("shows projects to workspace roles, keys to admins, accounts and audit to workspace admins", () => {
    expect(visibleTabs({ admin: false, workspace: false, workspaceAdmin: false })).toEqual(["events"]);
    expect(visibleTabs({ admin: false, workspace: true, workspaceAdmin: false })).toEqual(["projects", "events"]);
    expect(visibleTabs({ admin: true, workspace: false, workspaceAdmin: false })).toEqual(["events", "keys"]);
    expect(visibleTabs({ admin: true, workspace: true, workspaceAdmin: true })).toEqual([
      "projects", "events", "keys", "accounts", "audit",
    ]);
  });
});
