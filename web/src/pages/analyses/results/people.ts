// The numbers of a result whose people can become a segment, and what each is in words.
import type { Definition, Kind, PeopleTarget } from "../definition";
import { tableOf } from "./tables";
import { breakdownLabel, type ResultText } from "./text";

export interface PeopleChoice {
  label: string;
  target: PeopleTarget;
}

/** Every "people behind this number" of a result, row by row (at most `limit`). */
export function peopleChoices(kind: Kind, result: unknown, text: ResultText, limit = 60): PeopleChoice[] {
  const table = tableOf(kind, result, text);
  const first = table.columns[0]?.key;
  return table.rows
    .flatMap((row) => (row.people ?? []).map((p) => ({ label: `${row.cells[first]} · ${p.label}`, target: p.target })))
    .slice(0, limit);
}

/** A sentence naming the people of `target` in the analysis `def`. */
export function describeTarget(def: Definition, target: PeopleTarget, text: ResultText): string {
  const { t } = text;
  switch (target.kind) {
    case "funnel": {
      const step = def.kind === "funnel" ? def.steps[target.step - 1] : undefined;
      const name = step ? step.name || text.event(step.event) : String(target.step);
      const key = target.status === "dropped" ? "analyses.toSegment.describeDropped" : "analyses.toSegment.describeConverted";
      const base = t(key, { step: target.step, name });
      return target.breakdown === undefined ? base : `${base} (${breakdownLabel(target.breakdown, text)})`;
    }
    case "retention": {
      const base = target.period === null
        ? t("analyses.toSegment.describeCohort", { cohort: target.cohort })
        : t("analyses.toSegment.describeReturned", { cohort: target.cohort, n: target.period });
      return target.breakdown === undefined ? base : `${base} (${breakdownLabel(target.breakdown, text)})`;
    }
    case "lifecycle":
      return t("analyses.toSegment.describeLifecycle", {
        bucket: target.bucket, status: t(`analyses.lifecycle.${target.status}`),
      });
    case "stickiness":
      return t("analyses.toSegment.describeStickiness", { n: target.intervals });
  }
}
