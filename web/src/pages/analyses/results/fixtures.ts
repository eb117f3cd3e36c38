// Results and words shared by the chart and table tests.
import { formatters } from "../format";
import type { ResultText } from "./text";
import type { FunnelResult } from "./types";

export const text: ResultText = {
  t: (key, values) => (values ? `${key}:${JSON.stringify(values)}` : key),
  event: (name) => (name === "app_start" ? "App start" : name),
  property: (name) => (name === "$os" ? "OS" : name),
  fmt: formatters("en"),
};

const step = (n: number, label: string, count: number, dropped: number) => ({
  step: n, label, event: label, optional: false, count, dropped,
  conversion_from_first: count / 100, conversion_from_previous: null, drop_off_rate: null,
  median_time_from_previous: null, is_breakpoint: false,
});
export const funnel: FunnelResult = {
  order: "sequential", entered: 100, converted: 40, conversion_rate: 0.4, median_time_to_convert: 60,
  steps: [step(1, "app_start", 100, 0), step(2, "add_to_cart", 70, 30), step(3, "checkout", 40, 30)],
  breakdowns: null, trend: null, partial: false,
};

