import { describe, expect, it } from "vitest";
import { ApiError, cookieValue, csrfMiddleware, toApiError } from "./client";

describe("the API client", () => {
  it("reads a cookie by name", () => {
    expect(cookieValue("a=1; userloop_csrf=x%3Dy; b=2", "userloop_csrf")).toBe("x=y");
    expect(cookieValue("a=1", "userloop_csrf")).toBe("");
  });

  it("turns the API's error body into an error with its message", () => {
    const err = toApiError(404, { error: { code: "not_found", message: "no project named 'x'", field: "project" } });
    expect(err).toBeInstanceOf(ApiError);
    expect(err.message).toBe("no project named 'x'");
    expect(err.field).toBe("project");
    expect(toApiError(502, "bad gateway").message).toBe("HTTP 502");
  });

  it("sends the CSRF token with unsafe methods only", async () => {
    document.cookie = "userloop_csrf=token123";
    const onRequest = csrfMiddleware.onRequest!;
    const call = (method: string) =>
      onRequest({ request: new Request("http://x/api/v1/tags", { method }) } as never) as Promise<Request>;
    expect((await call("POST")).headers.get("X-CSRF-Token")).toBe("token123");
    expect((await call("DELETE")).headers.get("X-CSRF-Token")).toBe("token123");
    expect((await call("GET")).headers.get("X-CSRF-Token")).toBeNull();
  });
});
