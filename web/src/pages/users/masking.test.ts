import { describe, expect, it } from "vitest";
import { sensitiveKind, tokens } from "./masking";

describe("personal-data fields", () => {
  it("splits names like the API", () => {
    expect(tokens("$identity_mobile")).toEqual(["identity", "mobile"]);
    expect(tokens("contactPhone")).toEqual(["contact", "phone"]);
    expect(tokens("HTTPServer")).toEqual(["http", "server"]);
  });
  it("marks whole tokens only", () => {
    expect(sensitiveKind("$phone")).toBe("phone");
    expect(sensitiveKind("contact_email")).toBe("email");
    expect(sensitiveKind("hotel")).toBeNull();
    expect(sensitiveKind("telegram_id")).toBeNull();
    expect(sensitiveKind("emailed")).toBeNull();
  });
});
