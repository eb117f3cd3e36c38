// One view per model's report; the report is a free-form object, read into its typed shape here.
import type { ModelTab } from "./reports";
import type {
  ActivityReport, ChurnReport, ClvReport, LifecycleReport, PreferenceReport, RfmReport, ValueReport,
} from "./reports";
import { ChurnView } from "./ChurnView";
import { ClvView } from "./ClvView";
import { LifecycleView } from "./LifecycleView";
import { ActivityView, PreferenceView } from "./PreferenceView";
import { RfmView } from "./RfmView";
import { ValueView } from "./ValueView";

export function ModelView({ name, report }: { name: ModelTab; report: Record<string, unknown> }) {
  switch (name) {
    case "rfm":
      return <RfmView report={report as unknown as RfmReport} />;
    case "lifecycle":
      return <LifecycleView report={report as unknown as LifecycleReport} />;
    case "value":
      return <ValueView report={report as unknown as ValueReport} />;
    case "clv":
      return <ClvView report={report as unknown as ClvReport} />;
    case "churn":
      return <ChurnView report={report as unknown as ChurnReport} />;
    case "preference":
      return <PreferenceView report={report as unknown as PreferenceReport} />;
    case "activity":
      return <ActivityView report={report as unknown as ActivityReport} />;
  }
}
