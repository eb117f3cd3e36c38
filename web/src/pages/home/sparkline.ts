// The SVG path of a sparkline: the values scaled into the box, 2 px of margin, a flat line in the middle when
// every value is the same.

export function sparkPath(values: number[], width: number, height: number): string {
  const pad = 2;
  const min = Math.min(...values);
  const max = Math.max(...values);
  const step = values.length > 1 ? (width - 2 * pad) / (values.length - 1) : 0;
  const y = (v: number) => (max === min ? height / 2 : pad + (height - 2 * pad) * (1 - (v - min) / (max - min)));
  return values.map((v, i) => `${i ? "L" : "M"}${(pad + i * step).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
}
