// Sweep: the same prompt at N points on the line between two weight settings (all streaming
// at once, same seed), each answer with its rewards, and a chart of reward against the weight.

import { chartBox, lines } from "./charts.js";
import { clear, el, field, fmt, numberInput, showError, weightsText } from "./dom.js";
import { AnswerCard, PromptForm } from "./generation.js";
import { WeightsEditor } from "./simplex.js";

function between(a, b, t, policies) {
  return Object.fromEntries(policies.map((p) => [p, (1 - t) * a[p] + t * b[p]]));
}

export class SweepPanel {
  constructor(root, mixture) {
    this.mixture = mixture;
    const policies = mixture.policies;
    const one = (p) => Object.fromEntries(policies.map((q) => [q, q === p ? 1 : 0]));
    this.form = new PromptForm("Tell me about the ocean.");
    this.from = new WeightsEditor(policies, one(policies[0]), { label: "From" });
    this.to = new WeightsEditor(policies, one(policies[policies.length - 1]), { label: "To" });
    this.points = numberInput(5, { min: 2, max: 9, step: 1 });
    this.go = el("button", { type: "submit", class: "primary" }, "Sweep");
    this.chart = chartBox("reward on each objective against the position between the two settings");
    this.table = el("table", { class: "data" });
    this.results = el("div", { class: "columns results" });
    const presets = (editor) => el("div", { class: "presets" }, policies.map((p) =>
      el("button", { type: "button", onclick: () => editor.set(one(p)) }, `all ${p}`)));
    clear(root,
      el("form", { class: "panel", onsubmit: (event) => { event.preventDefault(); this.sweep(); } },
        el("h2", {}, "Sweep between two settings"),
        this.form.element,
        el("div", { class: "row" },
          el("div", { class: "card" }, el("h3", {}, "From"), this.from.element, presets(this.from)),
          el("div", { class: "card" }, el("h3", {}, "To"), this.to.element, presets(this.to))),
        el("div", { class: "actions" }, field("Points", this.points, "2 to 9, the ends included"), this.go)),
      this.chart.element, this.table, this.results);
  }

  async sweep() {
    showError(null);
    let base;
    try { base = this.form.request(); } catch (error) { showError(error); return; }
    const n = Math.min(9, Math.max(2, Math.round(Number(this.points.value))));
    const policies = this.mixture.policies;
    const stops = Array.from({ length: n }, (_, i) => i / (n - 1));
    const controller = new AbortController();
    this.go.disabled = true;
    const started = performance.now();
    const runs = stops.map((t) => {
      const weights = between(this.from.weights, this.to.weights, t, policies);
      const card = new AnswerCard(`t = ${t.toFixed(2)}`, weightsText(weights), this.mixture.objectives);
      return { t, weights, card, body: { ...base, model: this.mixture.id, mixture: { weights } } };
    });
    clear(this.results, runs.map((r) => r.card.element));
    const outcomes = await Promise.allSettled(runs.map((r) =>
      r.card.run(this.form.path, r.body, this.form.scorerPrompt, controller.signal, started)));
    this.go.disabled = false;
    const failed = outcomes.find((o) => o.status === "rejected");
    if (failed) { showError(failed.reason); return; }
    this.draw(runs, outcomes.map((o) => o.value));
  }

  draw(runs, answers) {
    const objectives = Object.keys(answers[0].rewards);
    const axes = Object.fromEntries(objectives.map((o) => [`y-${o}`, `${o} (${this.mixture.objectives[o].units})`]));
    lines(this.chart.canvas,
      objectives.map((o) => ({ label: o, axis: `y-${o}`, points: runs.map((r, i) => [r.t, answers[i].rewards[o]]) })),
      "t: from (0) to (1)", axes);
    clear(this.table,
      el("caption", {}, "Rewards along the sweep"),
      el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "t"), el("th", { scope: "col" }, "weights"),
        objectives.map((o) => el("th", { scope: "col" }, o)), el("th", { scope: "col" }, "tokens"))),
      el("tbody", {}, runs.map((r, i) => el("tr", {},
        el("td", {}, r.t.toFixed(2)), el("td", {}, weightsText(r.weights)),
        objectives.map((o) => el("td", {}, fmt(answers[i].rewards[o]))), el("td", {}, answers[i].tokens ?? "–")))));
  }
}
