// Compare: one prompt, up to four settings side by side, all streaming at once with the same
// seed and sampling settings; per column its weights, speed, finish reason and rewards.

import { clear, el, showError } from "./dom.js";
import { AnswerCard, PromptForm } from "./generation.js";
import { SettingPicker } from "./setting.js";

const MAX_COLUMNS = 4;

export class ComparePanel {
  constructor(root, mixture) {
    this.mixture = mixture;
    this.form = new PromptForm("What do you think about Monday mornings?");
    this.pickers = el("div", { class: "columns pickers" });
    this.results = el("div", { class: "columns results", "aria-live": "polite" });
    this.add = el("button", { type: "button", onclick: () => this.addColumn() }, "Add a column");
    this.remove = el("button", { type: "button", onclick: () => this.removeColumn() }, "Remove the last column");
    this.go = el("button", { type: "submit", class: "primary" }, "Compare");
    this.stop = el("button", { type: "button", disabled: true, onclick: () => this.controller?.abort() }, "Stop");
    this.columns = [];
    const policies = mixture.policies;
    const one = (p) => Object.fromEntries(policies.map((q) => [q, q === p ? 1 : 0]));
    this.addColumn(mixture.default_weights);
    this.addColumn(one(policies[0]));
    clear(root,
      el("form", { class: "panel", onsubmit: (event) => { event.preventDefault(); this.compare(); } },
        el("h2", {}, "Compare weight settings"),
        this.form.element,
        this.pickers,
        el("div", { class: "actions" }, this.add, this.remove, this.go, this.stop)),
      this.results);
  }

  addColumn(weights) {
    if (this.columns.length >= MAX_COLUMNS) return;
    const picker = new SettingPicker(this.mixture, { label: `Column ${this.columns.length + 1}`, weights });
    this.columns.push(picker);
    this.pickers.append(el("div", { class: "card" }, picker.element));
    this.updateButtons();
  }

  removeColumn() {
    if (this.columns.length <= 1) return;
    this.columns.pop();
    this.pickers.lastChild.remove();
    this.updateButtons();
  }

  updateButtons() {
    this.add.disabled = this.columns.length >= MAX_COLUMNS;
    this.remove.disabled = this.columns.length <= 1;
  }

  async compare() {
    showError(null);
    let base;
    try { base = this.form.request(); } catch (error) { showError(error); return; }
    this.controller = new AbortController();
    this.go.disabled = true;
    this.stop.disabled = false;
    const started = performance.now();
    const runs = this.columns.map((picker) => {
      const setting = picker.value;
      const card = new AnswerCard(setting.label, setting.request.model, this.mixture.objectives);
      card.element.dataset.request = JSON.stringify(setting.request);
      return { card, body: { ...base, ...setting.request } };
    });
    clear(this.results, runs.map((run) => run.card.element));
    const outcomes = await Promise.allSettled(runs.map((run) =>
      run.card.run(this.form.path, run.body, this.form.scorerPrompt, this.controller.signal, started)));
    const failed = outcomes.find((o) => o.status === "rejected" && o.reason.name !== "AbortError");
    if (failed) showError(failed.reason);
    this.go.disabled = false;
    this.stop.disabled = true;
  }
}
