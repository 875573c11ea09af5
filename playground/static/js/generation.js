// What compare and sweep share: the prompt and sampling form, and one answer streamed into a
// card with its timings, finish reason and rewards on every objective.

import { scores, stream } from "./api.js";
import { clear, el, field, fmt, numberInput, select } from "./dom.js";

export class PromptForm {
  constructor(prompt) {
    this.mode = select([["chat", "chat"], ["completion", "completion"]], "chat");
    this.system = el("textarea", { rows: "2", placeholder: "optional" });
    this.prompt = el("textarea", { rows: "3", required: true }, prompt);
    this.temperature = numberInput(0, { min: 0, max: 2, step: 0.05 });
    this.topP = numberInput(1, { min: 0.01, max: 1, step: 0.01 });
    this.maxTokens = numberInput(96, { min: 1, max: 4096, step: 1 });
    this.seed = numberInput(0, { min: 0, step: 1 });
    this.extra = el("textarea", { rows: "2", placeholder: '{"stop": ["\\n\\n"], "min_tokens": 8}' });
    const systemField = field("System message", this.system);
    this.mode.addEventListener("change", () => { systemField.hidden = this.mode.value !== "chat"; });
    this.element = el("div", { class: "prompt-form" },
      el("div", { class: "row" }, field("Kind", this.mode), systemField),
      field("Prompt", this.prompt),
      el("div", { class: "row sampling" },
        field("Temperature", this.temperature, "0 is greedy"), field("top_p", this.topP),
        field("Max tokens", this.maxTokens), field("Seed", this.seed, "the same for every column")),
      field("More request fields (JSON)", this.extra, "any field of the API: stop, min_tokens, top_k, structured_outputs…"));
  }

  get path() { return this.mode.value === "chat" ? "/v1/chat/completions" : "/v1/completions"; }

  // The prompt as the scorers see it: the text, or the chat's messages.
  get scorerPrompt() {
    if (this.mode.value !== "chat") return this.prompt.value;
    const messages = [{ role: "user", content: this.prompt.value }];
    if (this.system.value.trim()) messages.unshift({ role: "system", content: this.system.value });
    return messages;
  }

  // The request every column shares; a column adds its model (and weights).
  request() {
    let extra = {};
    if (this.extra.value.trim()) {
      try { extra = JSON.parse(this.extra.value); } catch (error) { throw new Error(`More request fields: not JSON (${error.message})`); }
      if (typeof extra !== "object" || Array.isArray(extra) || extra === null) throw new Error("More request fields: a JSON object, please");
    }
    const prompt = this.mode.value === "chat" ? { messages: this.scorerPrompt } : { prompt: this.prompt.value };
    return {
      ...prompt,
      temperature: Number(this.temperature.value),
      top_p: Number(this.topP.value),
      max_tokens: Number(this.maxTokens.value),
      seed: Number(this.seed.value),
      stream_options: { include_usage: true },
      ...extra,
    };
  }
}

// One answer in a card: filled as its tokens arrive; text only, never markup.
export class AnswerCard {
  // rewards: show the answer's reward on every objective (not in a blind vote: a judge's score
  // would sway the person judging).
  constructor(title, subtitle, objectives, { rewards = true } = {}) {
    this.objectives = objectives; // the mixture's: {objective: {scorer, direction, units}}
    this.showRewards = rewards;
    this.text = el("pre", { class: "answer", "aria-live": "off" });
    this.stats = el("dl", { class: "stats" });
    this.rewards = el("dl", { class: "stats rewards" });
    this.element = el("article", { class: "card answer-card", dataset: { state: "idle" } },
      el("h3", {}, title), subtitle ? el("p", { class: "muted subtitle" }, subtitle) : null,
      this.text, this.stats, this.rewards);
  }

  // Stream one answer; resolves {text, finish, tokens, seconds, rewards}.
  async run(path, body, scorerPrompt, signal, started) {
    const card = this.element;
    let text = "", finish = null, tokens = null, first = null;
    card.dataset.state = "streaming";
    clear(this.text);
    clear(this.stats);
    clear(this.rewards);
    try {
      for await (const chunk of stream(path, body, signal)) {
        const choice = chunk.choices?.[0];
        const piece = choice ? (choice.delta?.content ?? choice.text ?? "") : "";
        if (piece) {
          if (first === null) {
            first = performance.now();
            card.dataset.firstMs = String(Math.round(first - started));
          }
          text += piece;
          this.text.textContent = text;
        }
        if (choice?.finish_reason) finish = choice.finish_reason;
        if (chunk.usage) tokens = chunk.usage.completion_tokens;
      }
    } catch (error) {
      card.dataset.state = "failed";
      this.stats.append(el("dt", {}, "error"), el("dd", { class: "error-text" }, error.name === "AbortError" ? "stopped" : error.message));
      throw error;
    }
    const done = performance.now();
    card.dataset.doneMs = String(Math.round(done - started));
    card.dataset.state = "done";
    const decoding = first !== null && tokens > 1 ? (tokens - 1) / ((done - first) / 1000) : null;
    const stats = {
      "finish": finish ?? "–",
      "tokens": tokens ?? "–",
      "tokens/s": fmt(decoding, 1),
      "first token": first === null ? "–" : `${Math.round(first - started)} ms`,
    };
    for (const [name, value] of Object.entries(stats)) this.stats.append(el("dt", {}, name), el("dd", { dataset: { stat: name } }, value));
    if (!this.showRewards) return { text, finish, tokens, rewards: null };
    const [rewards] = await scores(scorerPrompt, [text]);
    for (const [objective, value] of Object.entries(rewards)) {
      const scorer = this.objectives[objective];
      this.rewards.append(el("dt", { title: `${scorer.units}; ${scorer.direction} is better` }, `${objective} (${scorer.scorer})`),
        el("dd", { dataset: { objective } }, fmt(value)));
    }
    card.dataset.scored = "true";
    return { text, finish, tokens, rewards };
  }
}
