// Mixture weights that stay on the simplex, for K = 2..8 policies: a slider per policy, where
// moving one rescales the others so that they keep their proportions and all sum to 1; for
// K = 3 also a triangle whose corners are the policies (drag, click, or arrow keys).

import { el } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
const SIZE = 180;
const CORNERS = [[SIZE / 2, 12], [12, SIZE - 20], [SIZE - 12, SIZE - 20]];

export function normalised(weights, policies) {
  const values = policies.map((p) => Math.max(0, weights[p] ?? 0));
  const total = values.reduce((a, b) => a + b, 0);
  return Object.fromEntries(policies.map((p, i) => [p, total > 0 ? values[i] / total : 1 / policies.length]));
}

// Weights with policy `moved` set to `value` and the others rescaled to fill the rest.
export function moveOne(weights, policies, moved, value) {
  const rest = policies.filter((p) => p !== moved);
  const others = rest.reduce((sum, p) => sum + weights[p], 0);
  const next = { [moved]: value };
  for (const p of rest) next[p] = others > 0 ? (weights[p] * (1 - value)) / others : (1 - value) / rest.length;
  return Object.fromEntries(policies.map((p) => [p, next[p]]));
}

function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

export class WeightsEditor {
  constructor(policies, weights, { label = "weights", onchange = () => {} } = {}) {
    this.policies = policies;
    this.onchange = onchange;
    this.weights = normalised(weights, policies);
    this.sliders = {};
    this.outputs = {};
    const rows = policies.map((policy) => {
      const slider = el("input", {
        type: "range", min: "0", max: "1", step: "0.01",
        "aria-label": `${label}: weight of ${policy}`, dataset: { policy },
        oninput: (event) => this.set(moveOne(this.weights, policies, policy, Number(event.target.value))),
      });
      this.sliders[policy] = slider;
      this.outputs[policy] = el("output", { "aria-hidden": "true" });
      return el("div", { class: "slider" }, el("span", { class: "policy" }, policy), slider, this.outputs[policy]);
    });
    this.element = el("div", { class: "weights-editor", role: "group", "aria-label": label }, rows);
    if (policies.length === 3) this.element.append(this.triangle(label));
    this.render();
  }

  set(weights) {
    this.weights = normalised(weights, this.policies);
    this.render();
    this.onchange(this.weights);
  }

  render() {
    for (const policy of this.policies) {
      this.sliders[policy].value = String(this.weights[policy]);
      this.outputs[policy].textContent = this.weights[policy].toFixed(2);
    }
    if (this.point) {
      const [x, y] = this.position();
      this.point.setAttribute("cx", x.toFixed(1));
      this.point.setAttribute("cy", y.toFixed(1));
      this.pad.setAttribute("aria-valuetext", this.policies.map((p) => `${p} ${this.weights[p].toFixed(2)}`).join(", "));
    }
  }

  position() {
    const w = this.policies.map((p) => this.weights[p]);
    return [0, 1].map((axis) => CORNERS.reduce((sum, corner, i) => sum + w[i] * corner[axis], 0));
  }

  // Barycentric coordinates of (x, y), clamped onto the triangle.
  fromPoint(x, y) {
    const [[x1, y1], [x2, y2], [x3, y3]] = CORNERS;
    const det = (y2 - y3) * (x1 - x3) + (x3 - x2) * (y1 - y3);
    const a = ((y2 - y3) * (x - x3) + (x3 - x2) * (y - y3)) / det;
    const b = ((y3 - y1) * (x - x3) + (x1 - x3) * (y - y3)) / det;
    const w = [a, b, 1 - a - b].map((v) => Math.max(0, v));
    return Object.fromEntries(this.policies.map((p, i) => [p, w[i]]));
  }

  triangle(label) {
    const pad = svg("svg", { viewBox: `0 0 ${SIZE} ${SIZE}`, class: "triangle", tabindex: "0", role: "slider",
      "aria-label": `${label}: triangle of the three policies (arrow keys move the point)` });
    pad.append(svg("polygon", { points: CORNERS.map((c) => c.join(",")).join(" "), class: "triangle-area" }));
    this.policies.forEach((policy, i) => {
      const [x, y] = CORNERS[i];
      const text = svg("text", { x, y: i === 0 ? y - 2 : y + 14, "text-anchor": i === 0 ? "middle" : i === 1 ? "start" : "end" });
      text.textContent = policy;
      pad.append(text);
    });
    this.point = svg("circle", { r: 6, class: "triangle-point" });
    pad.append(this.point);
    const pick = (event) => {
      const box = pad.getBoundingClientRect();
      const x = ((event.clientX - box.left) / box.width) * SIZE;
      const y = ((event.clientY - box.top) / box.height) * SIZE;
      this.set(this.fromPoint(x, y));
    };
    pad.addEventListener("pointerdown", (event) => { pad.setPointerCapture(event.pointerId); pick(event); });
    pad.addEventListener("pointermove", (event) => { if (pad.hasPointerCapture(event.pointerId)) pick(event); });
    pad.addEventListener("keydown", (event) => {
      const moves = { ArrowLeft: [-4, 0], ArrowRight: [4, 0], ArrowUp: [0, -4], ArrowDown: [0, 4] };
      if (!moves[event.key]) return;
      event.preventDefault();
      const [x, y] = this.position();
      this.set(this.fromPoint(x + moves[event.key][0], y + moves[event.key][1]));
    });
    this.pad = pad;
    return pad;
  }
}
