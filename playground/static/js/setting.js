// What one column generates with: the mixture at chosen weights, a stored weight set
// ('<mixture>@<id>'), or a single component (the reference, a policy, a baseline).

import { el, field, select, weightsText } from "./dom.js";
import { WeightsEditor } from "./simplex.js";

export class SettingPicker {
  constructor(mixture, { label, weights }) {
    this.mixture = mixture;
    this.kind = select([["weights", "weights"], ["set", "stored weight set"], ["component", "one component"]], "weights");
    this.editor = new WeightsEditor(mixture.policies, weights || mixture.default_weights, { label });
    const sets = mixture.weight_sets.slice().reverse();
    this.sets = Object.fromEntries(sets.map((set) => [String(set.id), set]));
    this.set = select(sets.map(({ id, source }) =>
      [String(id), `${mixture.id}@${id} (${source}${id === mixture.active_weight_set ? ", active" : ""})`]));
    this.component = select([mixture.reference, ...mixture.policies, ...mixture.baselines]);
    const parts = { weights: this.editor.element, set: field("Weight set", this.set), component: field("Component", this.component) };
    if (!sets.length) this.kind.querySelector("option[value=set]").disabled = true;
    const show = () => { for (const [kind, node] of Object.entries(parts)) node.hidden = kind !== this.kind.value; };
    this.kind.addEventListener("change", show);
    show();
    this.element = el("div", { class: "setting" }, field(`${label}: generate with`, this.kind), Object.values(parts));
  }

  // {label, request: the fields it adds to a completion request, weights (of the mixture)}
  get value() {
    const mixture = this.mixture;
    if (this.kind.value === "set") {
      const model = `${mixture.id}@${this.set.value}`;
      const { weights } = this.sets[this.set.value];
      return { label: `${model}: ${weightsText(weights)}`, request: { model }, weights };
    }
    if (this.kind.value === "component") {
      return { label: `${this.component.value} alone`, request: { model: this.component.value }, weights: null };
    }
    const weights = this.editor.weights;
    return { label: weightsText(weights), request: { model: mixture.id, mixture: { weights } }, weights };
  }
}
