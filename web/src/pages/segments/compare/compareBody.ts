// The segments.compare request for two picked groups: A a segment, B another segment or everyone not in A.

export type FeatureKind = "tag" | "property" | "model";
export const EVERYONE = "everyone";

/** The request body; B omitted (null) means "everyone not in A". */
export function compareBody(project: string, a: number, b: string, features: FeatureKind[]) {
  return {
    project,
    a: { segment: a },
    b: b === EVERYONE || b === "" ? null : { segment: Number(b) },
    alpha: 0.05,
    correction: "bh" as const,
    features,
  };
}
