import { describe, expect, it } from "vitest";
import { compareBody, EVERYONE } from "./compareBody";

describe("the comparison request", () => {
  it("leaves B out for everyone else", () => {
    expect(compareBody("default", 3, EVERYONE, ["tag"])).toMatchObject({ a: { segment: 3 }, b: null, features: ["tag"] });
  });
  it("names B's segment by id", () => {
    expect(compareBody("p", 3, "7", ["tag", "model"]).b).toEqual({ segment: 7 });
  });
});
