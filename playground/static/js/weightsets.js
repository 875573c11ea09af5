// Weight sets (admin): every stored set, newest first, the active one marked, each with its
// latest eval's Min; activate one (roll back or forward) or set new live defaults, each after
// a confirmation.

import { admin } from "./api.js";
import { clear, confirmAction, el, fmt, showError, weightsText, when } from "./dom.js";
import { WeightsEditor } from "./simplex.js";

export class WeightSetsPanel {
  constructor(root, mixture, onchange) {
    this.mixture = mixture;
    this.onchange = onchange; // the live defaults changed: other panels refresh
    this.editor = new WeightsEditor(mixture.policies, mixture.default_weights, { label: "New live defaults" });
    this.live = el("p", { id: "live-defaults" });
    this.table = el("table", { class: "data", id: "weight-sets" });
    clear(root,
      el("div", { class: "panel" },
        el("h2", {}, "Weight sets"),
        this.live,
        el("form", { class: "card", onsubmit: (event) => { event.preventDefault(); this.setDefaults(); } },
          el("h3", {}, "Set live defaults"), this.editor.element,
          el("div", { class: "actions" }, el("button", { type: "submit", class: "primary" }, "Set as live defaults"))),
        this.table));
    this.refresh();
  }

  async refresh() {
    const [mixture, history] = await Promise.all([admin("/admin/mixture"), admin("/admin/weights/history")]);
    clear(this.live, "Live defaults: ", el("strong", { dataset: { weights: JSON.stringify(mixture.default_weights) } },
      weightsText(mixture.default_weights)), ` (weight set ${mixture.active_weight_set ?? "–"})`);
    clear(this.table,
      el("caption", {}, "Stored weight sets, newest first"),
      el("thead", {}, el("tr", {}, ["id", "source", "created", "weights", "fit job", "latest eval Min", ""].map((h) =>
        el("th", { scope: "col" }, h)))),
      el("tbody", {}, history.data.map((set) => this.row(set))));
  }

  row(set) {
    const evaluated = set.latest_eval;
    const min = evaluated ? `${fmt(100 * evaluated.min_win_rate, 1)} (${evaluated.min_objective}, eval ${evaluated.job_id})` : "–";
    const action = set.active
      ? el("strong", {}, "active")
      : el("button", { type: "button", onclick: () => this.activate(set) }, `Activate ${set.id}`);
    return el("tr", { dataset: { set: String(set.id), active: String(Boolean(set.active)) }, class: set.active ? "active" : "" },
      el("td", {}, String(set.id)), el("td", {}, set.source), el("td", {}, when(set.created)),
      el("td", {}, weightsText(set.weights)), el("td", {}, set.job_id ?? "–"), el("td", {}, min), el("td", {}, action));
  }

  async activate(set) {
    if (!(await confirmAction(`Make weight set ${set.id} (${weightsText(set.weights)}) the live defaults?`))) return;
    await this.act(() => admin(`/admin/weights/${set.id}/activate`, { method: "POST" }));
  }

  async setDefaults() {
    const weights = this.editor.weights;
    if (!(await confirmAction(`Set the live defaults to ${weightsText(weights)}? This stores a manual weight set.`))) return;
    await this.act(() => admin("/admin/weights", { method: "PUT", body: { weights } }));
  }

  async act(change) {
    showError(null);
    try {
      await change();
    } catch (error) {
      showError(error);
    }
    await this.refresh();
    this.onchange();
  }
}
