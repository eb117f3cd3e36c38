import { describe, expect, it } from "vitest";
import { defaultDefinition } from "../definition";
import { funnel, text } from "./fixtures";
import { describeTarget, peopleChoices } from "./people";

describe("people behind the numbers", () => {
  it("lists a funnel's conversions and drop-offs by step", () => {
    const choices = peopleChoices("funnel", funnel, text);
    expect(choices.map((c) => c.target)).toEqual([
      { kind: "funnel", step: 1, status: "converted", breakdown: undefined },
      { kind: "funnel", step: 2, status: "converted", breakdown: undefined },
      { kind: "funnel", step: 2, status: "dropped", breakdown: undefined },
      { kind: "funnel", step: 3, status: "converted", breakdown: undefined },
      { kind: "funnel", step: 3, status: "dropped", breakdown: undefined },
    ]);
    expect(choices[2].label).toBe("2. add_to_cart · analyses.toSegment.dropped");
  });

  it("names the people of a drop-off by the step's event", () => {
    const def = defaultDefinition("funnel", "app_start", "checkout");
    const said = describeTarget(def, { kind: "funnel", step: 2, status: "dropped" }, text);
    expect(said).toBe('analyses.toSegment.describeDropped:{"step":2,"name":"checkout"}');
  });
});
