// The page's charts, drawn by Chart.js (static/vendor, the global Chart): hovering a point
// shows its values. Each chart also keeps its numbers in a table beside it (screen readers,
// copying), built by the panel that draws it.

import { el } from "./dom.js";

const COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"];
export const colour = (i) => COLOURS[i % COLOURS.length];

export function chartBox(label) {
  const canvas = el("canvas", { role: "img", "aria-label": label });
  return { canvas, element: el("div", { class: "chart" }, canvas) };
}

// Each bar's 95% interval as a whisker (datasets with low/high arrays).
const whiskers = {
  id: "whiskers",
  afterDatasetsDraw(chart) {
    const { ctx, scales } = chart;
    chart.data.datasets.forEach((set, i) => {
      if (!set.low) return;
      chart.getDatasetMeta(i).data.forEach((bar, n) => {
        const [low, high] = [scales.y.getPixelForValue(set.low[n]), scales.y.getPixelForValue(set.high[n])];
        ctx.save();
        ctx.strokeStyle = "#222";
        ctx.beginPath();
        ctx.moveTo(bar.x, low); ctx.lineTo(bar.x, high);
        ctx.moveTo(bar.x - 4, low); ctx.lineTo(bar.x + 4, low);
        ctx.moveTo(bar.x - 4, high); ctx.lineTo(bar.x + 4, high);
        ctx.stroke();
        ctx.restore();
      });
    });
  },
};

// Each scatter point's name beside it (points carrying a name).
const pointNames = {
  id: "names",
  afterDatasetsDraw(chart) {
    const { ctx } = chart;
    chart.data.datasets.forEach((set, i) => {
      chart.getDatasetMeta(i).data.forEach((point, n) => {
        ctx.save();
        ctx.fillStyle = "#222";
        ctx.font = "12px system-ui, sans-serif";
        const left = point.x > chart.chartArea.right - 100; // near the right edge: on the left
        ctx.textAlign = left ? "right" : "left";
        ctx.fillText(set.data[n].name, point.x + (left ? -8 : 8), point.y - 6);
        ctx.restore();
      });
    });
  },
};

function draw(canvas, config) {
  Chart.getChart(canvas)?.destroy();
  return new Chart(canvas, {
    ...config,
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      interaction: { mode: "nearest", intersect: false },
      ...config.options,
    },
  });
}

// Lines over a numeric x axis; series: [{label, points: [[x, y]], axis?, colour?, dashed?}];
// axes: {id: title}.
export function lines(canvas, series, xTitle, axes) {
  const ids = Object.keys(axes);
  const scales = { x: { type: "linear", title: { display: true, text: xTitle } } };
  ids.forEach((id, i) => {
    scales[id] = { type: "linear", position: i === 0 ? "left" : "right", title: { display: true, text: axes[id] },
      grid: { drawOnChartArea: i === 0 } };
  });
  return draw(canvas, {
    type: "line",
    data: {
      datasets: series.map((s, i) => ({
        label: s.label, data: s.points.map(([x, y]) => ({ x, y })), yAxisID: s.axis || ids[0],
        borderColor: colour(s.colour ?? i), backgroundColor: colour(s.colour ?? i), pointRadius: s.points.length > 40 ? 0 : 3,
        borderDash: s.dashed ? [6, 4] : undefined,
      })),
    },
    options: { scales },
  });
}

// Grouped bars of percentages: labels along x, one dataset per series ({label, values, low?,
// high?}), each bar's interval drawn as a whisker.
export function bars(canvas, labels, series, yTitle) {
  return draw(canvas, {
    type: "bar",
    data: { labels, datasets: series.map((s, i) => ({ label: s.label, data: s.values, backgroundColor: colour(i),
      low: s.low, high: s.high })) },
    plugins: [whiskers],
    options: {
      scales: { y: { min: 0, max: 100, title: { display: true, text: yTitle } } },
      plugins: { tooltip: { callbacks: { label: (item) => {
        const set = item.dataset;
        const range = set.low ? ` [${set.low[item.dataIndex].toFixed(1)}, ${set.high[item.dataIndex].toFixed(1)}]` : "";
        return `${set.label}: ${item.formattedValue}${range}`;
      } } } },
    },
  });
}

// Named points on two axes, each labelled; `highlighted` names (the Pareto front) in a
// second colour, joined.
export function scatter(canvas, points, highlighted, xTitle, yTitle) {
  const group = (names) => names.map((name) => ({ x: points[name][0], y: points[name][1], name }));
  const names = Object.keys(points);
  const front = names.filter((n) => highlighted.includes(n)).sort((a, b) => points[a][0] - points[b][0]);
  return draw(canvas, {
    type: "scatter",
    plugins: [pointNames],
    data: { datasets: [
      { label: "Pareto front", data: group(front), backgroundColor: colour(1), borderColor: colour(1), showLine: true,
        borderDash: [6, 4], pointRadius: 6 },
      { label: "dominated", data: group(names.filter((n) => !highlighted.includes(n))), backgroundColor: colour(0), pointRadius: 5 },
    ] },
    options: {
      scales: { x: { title: { display: true, text: xTitle } }, y: { title: { display: true, text: yTitle } } },
      plugins: { tooltip: { callbacks: { label: (item) => `${item.raw.name}: (${item.raw.x.toFixed(3)}, ${item.raw.y.toFixed(3)})` } } },
    },
  });
}
