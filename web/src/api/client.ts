// The console's one way to the API: a client typed by the schema generated from /openapi.json (schema.d.ts), so a
// request the API does not accept fails to compile. Session cookies travel with every call; unsafe methods carry
// the CSRF token the sign-in returned (double submit: the cookie `userloop_csrf` and the header must agree).
import createClient, { type Middleware } from "openapi-fetch";
import type { paths } from "./schema";

export const CSRF_COOKIE = "userloop_csrf";
export const CSRF_HEADER = "X-CSRF-Token";
const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/** The value of cookie `name` in `cookies` (document.cookie's format), or "" when absent. */
export function cookieValue(cookies: string, name: string): string {
  for (const part of cookies.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return "";
}

/** The API's one error body: {"error": {"code", "message", "field"?, "hint"?}}. */
export interface ApiErrorBody {
  code: string;
  message: string;
  field?: string;
  hint?: string;
}

/** An answer other than 2xx, with the API's own message (shown to the user as is). */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly field?: string;
  readonly hint?: string;

  constructor(status: number, body: ApiErrorBody) {
    super(body.message);
    this.status = status;
    this.code = body.code;
    this.field = body.field;
    this.hint = body.hint;
  }
}

/** The error of an answer: the API's body when it sent one, else a generic one naming the status. */
export function toApiError(status: number, body: unknown): ApiError {
  const inner = (body as { error?: ApiErrorBody } | undefined)?.error;
  if (inner && typeof inner.message === "string") return new ApiError(status, inner);
  return new ApiError(status, { code: "http_" + status, message: `HTTP ${status}` });
}

export const csrfMiddleware: Middleware = {
  onRequest({ request }) {
    if (UNSAFE.has(request.method.toUpperCase())) {
      const token = cookieValue(typeof document === "undefined" ? "" : document.cookie, CSRF_COOKIE);
      if (token) request.headers.set(CSRF_HEADER, token);
    }
    return request;
  },
};

let onUnauthorized: (() => void) | null = null;
/** What to do when a call answers 401 (the session ended): the app sends the user to the sign-in page. */
export function setUnauthorizedHandler(handler: (() => void) | null): void {
  onUnauthorized = handler;
}

const sessionMiddleware: Middleware = {
  onResponse({ response, request }) {
    if (response.status === 401 && !request.url.includes("/api/v1/auth/")) onUnauthorized?.();
    return response;
  },
};

export const api = createClient<paths>({ baseUrl: "", credentials: "same-origin" });
api.use(csrfMiddleware, sessionMiddleware);

/** The data of a call, or a thrown ApiError: `const tags = await unwrap(api.GET("/api/v1/tags", {...}))`. */
export async function unwrap<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await call;
  if (!response.ok) throw toApiError(response.status, error);
  return data as T;
}
