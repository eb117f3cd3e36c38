// A small line of a metric's recent values, drawn as SVG (the home page stays light: no chart library).
import { sparkPath } from "./sparkline";

export function Sparkline({ values, width = 120, height = 32, label }: {
  values: number[];
  width?: number;
  height?: number;
  label: string;
}) {
  if (values.length < 2) return <div style={{ height }} />;
  return (
    <svg width={width} height={height} viewBox={`0 0 ${width} ${height}`} role="img" aria-label={label}>
      <path d={sparkPath(values, width, height)} fill="none" stroke="#1f6feb" strokeWidth={1.5} />
    </svg>
  );
}
