// Compare: one prompt, up to four settings side by side, all streaming at once with the same
// seed and sampling settings; per column its weights, speed, finish reason and rewards.
// Blind vote: two settings whose answers are shown as A and B in a random order, without their
// settings or rewards; the person says which is better for one objective, the vote is stored
// (POST /v1/mixture/votes, with the key the page holds) and then the settings are shown.

import { v1 } from "./api.js";
import { clear, el, field, select, showError } from "./dom.js";
import { AnswerCard, PromptForm } from "./generation.js";
import { SettingPicker } from "./setting.js";

const MAX_COLUMNS = 4;

export class ComparePanel {
  constructor(root, mixture) {
    this.mixture = mixture;
    this.form = new PromptForm("What do you think about Monday mornings?");
    this.pickers = el("div", { class: "columns pickers" });
    this.results = el("div", { class: "columns results", "aria-live": "polite" });
    this.ballot = el("div", { class: "card ballot", hidden: true });
    this.add = el("button", { type: "button", onclick: () => this.addColumn() }, "Add a column");
    this.remove = el("button", { type: "button", onclick: () => this.removeColumn() }, "Remove the last column");
    this.go = el("button", { type: "submit", class: "primary" }, "Compare");
    this.stop = el("button", { type: "button", disabled: true, onclick: () => this.controller?.abort() }, "Stop");
    this.blind = el("input", { type: "checkbox", id: "blind-vote", onchange: () => this.blindChanged() });
    this.columns = [];
    const policies = mixture.policies;
    const one = (p) => Object.fromEntries(policies.map((q) => [q, q === p ? 1 : 0]));
    this.addColumn(mixture.default_weights);
    this.addColumn(one(policies[0]));
    clear(root,
      el("form", { class: "panel", onsubmit: (event) => { event.preventDefault(); this.compare(); } },
        el("h2", {}, "Compare weight settings"),
        this.form.element,
        el("div", { class: "checks" },
          el("label", { class: "check", for: "blind-vote" }, this.blind,
            " Blind vote: two columns, answers shown as A and B in a random order, without settings or rewards")),
        this.pickers,
        el("div", { class: "actions" }, this.add, this.remove, this.go, this.stop)),
      this.results, this.ballot);
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

  blindChanged() {
    while (this.blind.checked && this.columns.length > 2) this.removeColumn();
    if (this.blind.checked && this.columns.length < 2) this.addColumn();
    this.updateButtons();
  }

  updateButtons() {
    const blind = this.blind?.checked;
    this.add.disabled = blind || this.columns.length >= MAX_COLUMNS;
    this.remove.disabled = blind || this.columns.length <= 1;
  }

  async compare() {
    showError(null);
    let base;
    try { base = this.form.request(); } catch (error) { showError(error); return; }
    this.controller = new AbortController();
    this.go.disabled = true;
    this.stop.disabled = false;
    this.ballot.hidden = true;
    const started = performance.now();
    const blind = this.blind.checked;
    const settings = this.columns.map((picker) => picker.value);
    if (blind && coinFlip()) settings.reverse();
    const runs = settings.map((setting, n) => {
      const card = blind
        ? new AnswerCard(`Answer ${"AB"[n]}`, null, this.mixture.objectives, { rewards: false })
        : new AnswerCard(setting.label, setting.request.model, this.mixture.objectives);
      if (!blind) card.element.dataset.request = JSON.stringify(setting.request);
      return { card, setting, body: { ...base, ...setting.request } };
    });
    clear(this.results, runs.map((run) => run.card.element));
    const prompt = this.form.scorerPrompt;
    const outcomes = await Promise.allSettled(runs.map((run) =>
      run.card.run(this.form.path, run.body, prompt, this.controller.signal, started)));
    const failed = outcomes.find((o) => o.status === "rejected" && o.reason.name !== "AbortError");
    if (failed) showError(failed.reason);
    if (blind && outcomes.every((o) => o.status === "fulfilled")) {
      this.showBallot(prompt, runs.map((run, n) => ({ ...run, answer: outcomes[n].value.text })));
    }
    this.go.disabled = false;
    this.stop.disabled = true;
  }

  // The vote: an objective and which answer is better for it; then what each answer was.
  showBallot(prompt, runs) {
    const objectives = Object.keys(this.mixture.objectives);
    const objective = select(objectives.length ? objectives : this.mixture.policies);
    const status = el("p", { class: "muted", role: "status" });
    const buttons = [0, 1].map((n) => el("button", { type: "button", class: "primary", dataset: { vote: "AB"[n] } },
      `${"AB"[n]} is better`));
    const cast = async (n) => {
      for (const button of buttons) button.disabled = true;
      const [chosen, rejected] = [runs[n], runs[1 - n]];
      try {
        const vote = await v1("/v1/mixture/votes", { method: "POST", body: {
          prompt, objective: objective.value, chosen: chosen.answer, rejected: rejected.answer,
          chosen_setting: chosen.setting.request, rejected_setting: rejected.setting.request } });
        status.textContent = `Vote ${vote.id} recorded: ${"AB"[n]} is better for ${vote.objective}.`;
        this.ballot.dataset.voted = String(vote.id);
        runs.forEach((run) => run.card.element.querySelector("h3").append(` was ${run.setting.label}`));
      } catch (error) {
        showError(error);
        for (const button of buttons) button.disabled = false;
      }
    };
    buttons.forEach((button, n) => button.addEventListener("click", () => cast(n)));
    delete this.ballot.dataset.voted;
    clear(this.ballot, el("h3", {}, "Which answer is better?"),
      el("div", { class: "actions" }, field("For the objective", objective), ...buttons), status);
    this.ballot.hidden = false;
  }
}

function coinFlip() {
  return crypto.getRandomValues(new Uint8Array(1))[0] < 128;
}
