// A sparkline as inline SVG built with the DOM: only numbers reach its attributes.

const NS = "http://www.w3.org/2000/svg";

export function sparkline(points, width = 120, height = 28) {
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("preserveAspectRatio", "none");
  const values = points.map((p) => Number(p[1])).filter(Number.isFinite);
  if (values.length < 2) return svg;
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  const span = hi - lo || 1;
  const t0 = Number(points[0][0]);
  const t1 = Number(points[points.length - 1][0]);
  const dt = t1 - t0 || 1;
  const coords = points.map((p) => {
    const x = ((Number(p[0]) - t0) / dt) * (width - 2) + 1;
    const y = height - 1 - ((Number(p[1]) - lo) / span) * (height - 2);
    return `${x.toFixed(1)},${y.toFixed(1)}`;
  });
  const line = document.createElementNS(NS, "polyline");
  line.setAttribute("points", coords.join(" "));
  line.setAttribute("vector-effect", "non-scaling-stroke");
  svg.append(line);
  return svg;
}
