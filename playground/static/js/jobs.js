// Jobs (admin): start a fit or an eval on an uploaded JSONL or one of the mixture's prompt
// sets (prompts, or preference pairs: a pair fit, a pair eval), follow it live, cancel it; when
// it is done, its charts (a fit's trajectory; an eval's win rates, Min and Pareto front, or a
// pair eval's accuracies) and an eval's answers, filtered by candidate and sorted by reward.
// Everything comes from the same /admin routes the CLI uses.

import { admin, adminText } from "./api.js";
import { bars, chartBox, lines, scatter } from "./charts.js";
import { append, clear, confirmAction, el, field, fmt, numberInput, select, showError, weightsText, when } from "./dom.js";

const ENDED = new Set(["succeeded", "failed", "cancelled"]);
const POLL_MS = 1000;
const PAGE_ROWS = 25; // answers shown at first, and added by "Show more"
// The fit options each method reads (the server refuses an option a method does not use).
const FIT_FIELDS = {
  implicit: ["samples_per_prompt", "max_tokens", "iterations", "step", "batch_size", "seed"],
  scorers: ["samples_per_prompt", "max_tokens", "iterations", "step", "batch_size", "seed"],
  judged: ["samples_per_prompt", "max_tokens", "iterations", "resample_every", "seed"],
  pairs: ["iterations", "seed"],
};

// A batch of preference pairs, by its first line.
function isPairs(text) {
  const first = text.split("\n").find((line) => line.trim());
  try { return first !== undefined && "chosen" in JSON.parse(first); } catch { return false; }
}

function checkbox(text, checked, value) {
  const box = el("input", { type: "checkbox", value, checked });
  return { box, element: el("label", { class: "check" }, box, ` ${text}`) };
}

export class JobsPanel {
  constructor(root, mixture, onchange) {
    this.mixture = mixture;
    this.onchange = onchange;
    this.root = root;
    this.kind = select([["fit", "fit (learn weights)"], ["eval", "eval (compare candidates)"]], "fit");
    this.source = select([]);
    this.file = el("input", { type: "file", accept: ".jsonl,.json,application/x-ndjson" });
    this.limit = numberInput(16, { min: 0, step: 1 });
    this.fitOptions = this.buildFitOptions();
    this.evalOptions = el("div");
    this.start = el("button", { type: "submit", class: "primary" }, "Start");
    this.list = el("table", { class: "data", id: "job-list" });
    this.view = el("section", { class: "job-view", id: "job-view", "aria-live": "polite" });
    const fileField = field("JSONL file", this.file, "one {\"prompt\"} or {\"messages\"} a line");
    const showSource = () => { fileField.hidden = this.source.value !== "upload"; };
    this.source.addEventListener("change", showSource);
    const showKind = () => { this.fitOptions.hidden = this.kind.value !== "fit"; this.evalOptions.hidden = this.kind.value !== "eval"; };
    this.kind.addEventListener("change", showKind);
    clear(root,
      el("div", { class: "panel" },
        el("h2", {}, "Jobs"),
        el("form", { class: "card", onsubmit: (event) => { event.preventDefault(); this.submit(); } },
          el("div", { class: "row" }, field("Job", this.kind), field("Prompts", this.source), fileField,
            field("Use the first", this.limit, "prompts (0: all)")),
          this.fitOptions, this.evalOptions,
          el("div", { class: "actions" }, this.start)),
        this.list),
      this.view);
    showKind();
    this.load().then(showSource);
  }

  async load() {
    const [sets, mixture] = await Promise.all([admin("/admin/prompts"), admin("/admin/mixture")]);
    clear(this.source, sets.data.map((s) => el("option", { value: s.name }, `${s.name} (${s.prompts} prompts)`)),
      el("option", { value: "upload" }, "upload a file"));
    this.objectiveSpecs = mixture.objectives;
    this.buildEvalOptions();
    await this.refreshList();
  }

  buildFitOptions() {
    this.fit = {
      samples_per_prompt: numberInput(8, { min: 1, step: 1 }),
      max_tokens: numberInput(48, { min: 1, step: 1 }),
      iterations: numberInput(500, { min: 1, step: 1 }),
      resample_every: numberInput(250, { min: 0, step: 1 }),
      step: numberInput(1, { min: 0.001, step: "any" }),
      batch_size: numberInput(16, { min: 1, step: 1 }),
      seed: numberInput(0, { min: 0, step: 1 }),
    };
    this.rewards = select([["implicit", "MPO on implicit rewards (the paper's)"], ["scorers", "MPO on the objectives' scorers"],
      ["judged", "judged: the worst objective's win rate under the served mixture"]], "implicit");
    this.beta = numberInput(0.1, { min: 0.0001, step: "any" });
    this.activateWhenDone = checkbox("activate the fitted weights when done", false);
    const betaField = field("beta (KL strength)", this.beta, "for the scorers' rewards and pair fits");
    const names = { samples_per_prompt: "Samples per prompt", max_tokens: "Max tokens", iterations: "Iterations",
      resample_every: "Resample every", step: "Step c", batch_size: "Batch size", seed: "Seed" };
    const hints = { max_tokens: "empty: an eval's", resample_every: "iterations (0: the reference's answers only)" };
    const fields = Object.fromEntries(Object.entries(this.fit).map(([k, input]) => [k, field(names[k], input, hints[k])]));
    const show = () => {
      const method = this.rewards.value;
      for (const [k, node] of Object.entries(fields)) node.hidden = !FIT_FIELDS[method].includes(k);
      betaField.hidden = method !== "scorers";
      if (method === "judged") { this.fit.max_tokens.value = ""; this.fit.samples_per_prompt.value = "4"; }
    };
    this.rewards.addEventListener("change", show);
    show();
    return el("fieldset", {}, el("legend", {}, "Fit options"),
      el("div", { class: "row" }, Object.values(fields)),
      el("div", { class: "row" }, field("Method", this.rewards, "a file of pairs is fitted by the pair fit"), betaField,
        this.activateWhenDone.element));
  }

  buildEvalOptions() {
    const mixture = this.mixture;
    const policies = mixture.policies;
    const uniform = Object.fromEntries(policies.map((p) => [p, 1 / policies.length]));
    this.candidates = [
      [mixture.id, `${mixture.id} (live defaults)`, true],
      ...policies.map((p) => [p, p, true]),
      ...mixture.baselines.map((b) => [b, b, false]),
      ...mixture.weight_sets.slice(-6).reverse().map(({ id, source }) => [`${mixture.id}@${id}`, `${mixture.id}@${id} (${source})`, false]),
      [JSON.stringify({ name: "uniform", weights: uniform }), "uniform weights", false],
    ].map(([value, text, checked]) => checkbox(text, checked, value));
    this.eval = {
      samples_per_prompt: numberInput(1, { min: 1, max: 64, step: 1 }),
      max_tokens: numberInput("", { min: 1, step: 1 }),  // empty: the manifest's answers
      temperature: numberInput("", { min: 0, max: 2, step: 0.05 }),
      seed: numberInput(0, { min: 0, step: 1 }),
    };
    this.objectives = el("input", { type: "text", value: Object.entries(this.objectiveSpecs).map(([o, s]) => `${o}=${s}`).join(" ") });
    const names = { samples_per_prompt: "Samples per prompt", max_tokens: "Max tokens", temperature: "Temperature", seed: "Seed" };
    const evalHints = { max_tokens: "empty: the mixture's answers", temperature: "empty: the mixture's answers" };
    clear(this.evalOptions, el("fieldset", {}, el("legend", {}, "Eval options"),
      el("div", { class: "checks", role: "group", "aria-label": "candidates" },
        el("span", {}, `Candidates (the reference ${mixture.reference} is always one):`), this.candidates.map((c) => c.element)),
      field("Objectives", this.objectives, "objective=scorer, separated by spaces; the mixture's own by default"),
      el("div", { class: "row" }, Object.entries(this.eval).map(([k, input]) => field(names[k], input, evalHints[k])))));
  }

  options(pairs) {
    if (this.kind.value === "fit") {
      const method = pairs ? "pairs" : this.rewards.value;
      const options = Object.fromEntries(FIT_FIELDS[method].filter((k) => this.fit[k].value !== "")
        .map((k) => [k, Number(this.fit[k].value)]));
      if (method === "scorers") {
        options.scorers = this.objectiveSpecs;
        options.beta = Number(this.beta.value);
      }
      if (method === "judged") options.method = "judged";
      if (this.activateWhenDone.box.checked) options.activate = true;
      return options;
    }
    const options = Object.fromEntries(Object.entries(this.eval).filter(([, input]) => input.value !== "")
      .map(([k, input]) => [k, Number(input.value)]));
    options.candidates = this.candidates.filter((c) => c.box.checked).map((c) => (c.box.value.startsWith("{") ? JSON.parse(c.box.value) : c.box.value));
    options.objectives = Object.fromEntries(this.objectives.value.trim().split(/\s+/).filter(Boolean).map((pair) => {
      const cut = pair.indexOf("=");
      return [pair.slice(0, cut), pair.slice(cut + 1)];
    }));
    return options;
  }

  async prompts() {
    let text;
    if (this.source.value === "upload") {
      if (!this.file.files.length) throw new Error("choose a JSONL file to upload");
      text = await this.file.files[0].text();
    } else {
      text = await adminText(`/admin/prompts/${encodeURIComponent(this.source.value)}`);
    }
    const limit = Number(this.limit.value);
    const lines = text.split("\n").filter((line) => line.trim());
    return (limit > 0 ? lines.slice(0, limit) : lines).join("\n") + "\n";
  }

  async submit() {
    showError(null);
    try {
      const form = new FormData();
      const text = await this.prompts();
      form.append("file", new Blob([text], { type: "application/x-ndjson" }), "prompts.jsonl");
      form.append("options", JSON.stringify(this.options(isPairs(text))));
      const status = await admin(`/admin/${this.kind.value}`, { method: "POST", form });
      await this.refreshList();
      this.show(this.kind.value, status.id);
    } catch (error) {
      showError(error);
    }
  }

  async refreshList() {
    const jobs = await admin("/admin/jobs?limit=20");
    clear(this.list,
      el("caption", {}, "Latest jobs"),
      el("thead", {}, el("tr", {}, ["job", "kind", "status", "started", "ended", ""].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, jobs.data.map((job) => el("tr", { dataset: { job: job.id } },
        el("td", {}, job.id), el("td", {}, job.kind), el("td", {}, job.status), el("td", {}, when(job.created)),
        el("td", {}, job.finished ? when(job.finished) : "–"),
        el("td", {}, el("button", { type: "button", onclick: () => this.show(job.kind, job.id) }, `Show ${job.id}`))))));
  }

  // Follow one job until it ends, then draw its result.
  async show(kind, id) {
    this.following = `${kind}/${id}`;
    const progress = el("progress", { max: "1", value: "0", "aria-label": `progress of ${kind} job ${id}` });
    const phase = el("span", { class: "phase", dataset: { phase: "" } });
    const detail = el("span", { class: "muted" });
    const cancel = el("button", { type: "button", onclick: () => this.cancel(kind, id) }, "Cancel");
    const body = el("div", { class: "job-result" });
    clear(this.view, el("h2", {}, `${kind} job ${id}`), el("p", {}, "Phase: ", phase, " ", progress, " ", detail, " ", cancel), body);
    for (;;) {
      if (this.following !== `${kind}/${id}`) return;
      let status;
      try {
        status = await admin(`/admin/${kind}/${id}`);
      } catch (error) {
        showError(error);
        return;
      }
      phase.textContent = status.phase;
      phase.dataset.phase = status.phase;
      const [done, total, text] = this.progressOf(kind, status);
      progress.max = String(total || 1);
      progress.value = String(done || 0);
      detail.textContent = text;
      if (ENDED.has(status.phase)) {
        cancel.remove();
        if (status.error) body.append(el("p", { class: "error-text" }, status.error));
        if (status.phase === "succeeded") await (kind === "fit" ? this.drawFit(body, id, status) : this.drawEval(body, id, status));
        await this.refreshList();
        if (kind === "fit" && status.params?.activate) this.onchange();
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  progressOf(kind, status) {
    const p = status.progress || {};
    if (kind === "fit") {
      if (status.phase === "fitting") {
        const name = status.params?.method === "mpo" ? "F" : "min";
        const current = status.current ? ` — ${weightsText(status.current.weights)}, ${name} ${fmt(status.current.objective, 4)}` : "";
        return [p.iteration, p.iterations, `iteration ${p.iteration} of ${p.iterations}${current}`];
      }
      return [p.samples_done, p.samples_total, p.samples_total ? `${p.samples_done} of ${p.samples_total} responses` : ""];
    }
    if (status.phase === "scoring") return [p.scored, p.to_score, `${p.scored} of ${p.to_score} scored`];
    return [p.responses_done, p.responses_total, p.responses_total ? `${p.responses_done} of ${p.responses_total} answers${p.candidate ? ` (${p.candidate})` : ""}` : ""];
  }

  async cancel(kind, id) {
    if (!(await confirmAction(`Cancel ${kind} job ${id}? Nothing of it is stored.`))) return;
    try { await admin(`/admin/${kind}/${id}`, { method: "DELETE" }); } catch (error) { showError(error); }
  }

  async drawFit(body, id, status) {
    const trajectory = await admin(`/admin/fit/${id}/trajectory`);
    const mpo = trajectory.method === "mpo";
    // MPO's output is the average of its iterates; the judged and pair fits' their best iterate (min_k of the objectives).
    const [output, name] = mpo ? ["the average of the iterates", "F"] : ["the best iterate", "min over objectives"];
    const chart = chartBox(`lambda of each policy and the objective (${name}) over the iterations`);
    const summary = el("p", { id: "fit-final", dataset: { weights: JSON.stringify(status.weights) } },
      `Fitted weights (${output}, ${trajectory.method} fit): ${weightsText(status.weights)}; ${name} ${fmt(status.objective, 4)}`);
    const set = status.result_weight_set;
    const activate = el("button", { type: "button", onclick: async () => {
      if (!(await confirmAction(`Make weight set ${set} (${weightsText(status.weights)}) the live defaults?`))) return;
      try { await admin(`/admin/weights/${set}/activate`, { method: "POST" }); } catch (error) { showError(error); }
      this.onchange();
    } }, `Activate weight set ${set}`);
    body.append(summary, el("div", { class: "actions" }, activate), chart.element);
    const points = trajectory.points;
    const series = trajectory.policies.map((p, k) => ({ label: `lambda ${p}`, points: points.map((it) => [it.t, it.weights[k]]) }));
    // The fit's answer (the average of the iterates, or the best one): drawn as its own flat line per policy.
    trajectory.policies.forEach((p, k) => series.push({ label: `fitted ${p}`, dashed: true, colour: k,
      points: [[points[0]?.t ?? 0, status.weights[p]], [points.at(-1)?.t ?? 1, status.weights[p]]] }));
    series.push({ label: `${name} (objective)`, axis: "yF", colour: trajectory.policies.length,
      points: points.map((it) => [it.t, it.objective]) });
    lines(chart.canvas, series, "iteration", { yW: "weight", yF: `${name} estimate` });
  }

  async drawEval(body, id, status) {
    const result = status.result;
    if (result.kind === "pairs") return this.drawPairEval(body, result);
    const objectives = Object.keys(result.objectives);
    const names = result.candidates.map((c) => c.name);
    const winChart = chartBox("win rate against the reference per objective and candidate, and the Min");
    const paretoChart = chartBox("mean reward of each candidate on two objectives, the Pareto front marked");
    const series = objectives.map((o) => ({
      label: `win ${o}`,
      values: result.candidates.map((c) => 100 * c.objectives[o].win_rate.mean),
      low: result.candidates.map((c) => 100 * c.objectives[o].win_rate.low),
      high: result.candidates.map((c) => 100 * c.objectives[o].win_rate.high),
    }));
    series.push({ label: "Min", values: result.candidates.map((c) => 100 * c.min.win_rate) });
    const axes = el("div", { class: "row" });
    body.append(el("h3", {}, `Win rates against ${result.reference} (${result.prompts} prompts × ${result.samples_per_prompt})`),
      winChart.element, this.summaryTable(result), el("h3", {}, "Mean rewards"), axes, paretoChart.element,
      el("h3", {}, "Answers"));
    bars(winChart.canvas, names, series, "win rate (%)");
    const [xs, ys] = [select(objectives, objectives[0]), select(objectives, objectives[1] ?? objectives[0])];
    const drawPareto = () => {
      const points = Object.fromEntries(result.candidates.map((c) => [c.name, [c.objectives[xs.value].reward.mean, c.objectives[ys.value].reward.mean]]));
      const units = (o) => `mean ${o} (${result.objectives[o].units}; ${result.objectives[o].direction} is better)`;
      scatter(paretoChart.canvas, points, result.pareto_front || [], units(xs.value), units(ys.value));
    };
    xs.addEventListener("change", drawPareto);
    ys.addEventListener("change", drawPareto);
    append(axes, objectives.length > 2 ? [field("x", xs), field("y", ys)] : []);
    drawPareto();
    const answers = (await adminText(`/admin/eval/${id}/answers.jsonl`)).split("\n").filter(Boolean).map((line) => JSON.parse(line));
    body.append(new AnswersTable(answers, names, objectives).element);
  }

  // A pair eval: each candidate's preference accuracy per objective (with the Min) and its margins.
  drawPairEval(body, result) {
    const objectives = result.objectives;
    const names = result.candidates.map((c) => c.name);
    const chart = chartBox("preference accuracy per objective and candidate, and the Min");
    const series = objectives.map((o) => ({
      label: `accuracy ${o}`,
      values: result.candidates.map((c) => 100 * c.objectives[o].accuracy.mean),
      low: result.candidates.map((c) => 100 * c.objectives[o].accuracy.low),
      high: result.candidates.map((c) => 100 * c.objectives[o].accuracy.high),
    }));
    series.push({ label: "Min", values: result.candidates.map((c) => 100 * c.min.accuracy) });
    const counts = objectives.map((o) => `${o} ${result.pairs[o]}`).join(", ");
    const interval = (s, scale, digits) => `${fmt(scale * s.mean, digits)} [${fmt(scale * s.low, digits)}, ${fmt(scale * s.high, digits)}]`;
    const table = el("table", { class: "data", id: "eval-summary" },
      el("caption", {}, "Accuracy: % of pairs whose chosen answer the candidate prefers, 95% interval; margin in nats of log pi / pi_ref"),
      el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "candidate"),
        objectives.map((o) => el("th", { scope: "col" }, `accuracy ${o}`)), el("th", { scope: "col" }, "Min"),
        objectives.map((o) => el("th", { scope: "col" }, `margin ${o}`)))),
      el("tbody", {}, result.candidates.map((c) => el("tr", { dataset: { candidate: c.name } },
        el("th", { scope: "row" }, c.name),
        objectives.map((o) => el("td", { dataset: { objective: o } }, interval(c.objectives[o].accuracy, 100, 1))),
        el("td", { dataset: { min: "" } }, fmt(100 * c.min.accuracy, 1)),
        objectives.map((o) => el("td", {}, interval(c.objectives[o].margin, 1, 2)))))));
    body.append(el("h3", {}, `Preference accuracy on held-out pairs (${counts})`), chart.element, table);
    bars(chart.canvas, names, series, "accuracy (%)");
  }

  summaryTable(result) {
    const objectives = Object.keys(result.objectives);
    const interval = (w) => `${fmt(100 * w.mean, 1)} [${fmt(100 * w.low, 1)}, ${fmt(100 * w.high, 1)}]`;
    return el("table", { class: "data", id: "eval-summary" },
      el("caption", {}, "Win rate in % with its 95% interval (ties count half); Min = the worst objective's"),
      el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "candidate"),
        objectives.map((o) => el("th", { scope: "col" }, `win ${o}`)), el("th", { scope: "col" }, "Min"),
        objectives.map((o) => el("th", { scope: "col" }, `mean ${o}`)),
        el("th", { scope: "col" }, "tokens/answer"), el("th", { scope: "col" }, "tokens/s"))),
      el("tbody", {}, result.candidates.map((c) => el("tr", { dataset: { candidate: c.name } },
        el("th", { scope: "row" }, c.name),
        objectives.map((o) => el("td", { dataset: { objective: o } }, interval(c.objectives[o].win_rate))),
        el("td", { dataset: { min: "" } }, fmt(100 * c.min.win_rate, 1)),
        objectives.map((o) => el("td", {}, fmt(c.objectives[o].reward.mean))),
        el("td", {}, fmt(c.mean_tokens, 1)), el("td", {}, fmt(c.tokens_per_s, 1))))));
  }
}

// An eval's answers: one row each, filtered by candidate, sorted by a reward (click a header),
// 25 at a time.
class AnswersTable {
  constructor(answers, candidates, objectives) {
    this.answers = answers;
    this.objectives = objectives;
    this.filter = select([["", "every candidate"], ...candidates.map((c) => [c, c])], "", { id: "answers-candidate" });
    this.filter.addEventListener("change", () => this.render());
    this.sort = { key: null, descending: true };
    this.table = el("table", { class: "data", id: "eval-answers" });
    this.shown = PAGE_ROWS;
    this.more = el("button", { type: "button", onclick: () => { this.shown += PAGE_ROWS; this.render(); } }, "Show more");
    this.all = el("button", { type: "button", onclick: () => { this.shown = Infinity; this.render(); } }, "Show all");
    this.element = el("div", {}, field("Show", this.filter), this.table, el("div", { class: "actions" }, this.more, this.all));
    this.render();
  }

  header(key, text) {
    const sorted = this.sort.key === key;
    const button = el("button", { type: "button", class: "sort", onclick: () => {
      this.sort = { key, descending: sorted ? !this.sort.descending : true };
      this.render();
    } }, text, sorted ? (this.sort.descending ? " ▼" : " ▲") : "");
    return el("th", { scope: "col", "aria-sort": sorted ? (this.sort.descending ? "descending" : "ascending") : "none" }, button);
  }

  render() {
    let rows = this.answers.filter((a) => !this.filter.value || a.candidate === this.filter.value);
    const { key, descending } = this.sort;
    if (key) rows = rows.slice().sort((a, b) => (descending ? -1 : 1) * (a.rewards[key] - b.rewards[key]));
    const promptText = (p) => (typeof p === "string" ? p : p.map((m) => m.content).join("\n"));
    const total = rows.length;
    rows = rows.slice(0, this.shown);
    this.more.hidden = this.all.hidden = rows.length === total;
    clear(this.table,
      el("caption", {}, `${total} answers${rows.length < total ? `, the first ${rows.length} shown` : ""}`),
      el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "candidate"), el("th", { scope: "col" }, "prompt"),
        el("th", { scope: "col" }, "answer"), this.objectives.map((o) => this.header(o, o)), el("th", { scope: "col" }, "tokens"))),
      el("tbody", {}, rows.map((a) => el("tr", { dataset: { candidate: a.candidate, prompt: String(a.prompt_index), sample: String(a.sample) } },
        el("td", {}, a.candidate), el("td", { class: "prompt" }, promptText(a.prompt)), el("td", { class: "answer-cell" }, a.response),
        this.objectives.map((o) => el("td", { dataset: { objective: o } }, fmt(a.rewards[o]))), el("td", {}, String(a.tokens))))));
  }
}
