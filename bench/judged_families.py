"""How far apart the judged fit's two families are: both computed exactly on two-token answers
of the tiny demo, where every answer's probability is known.

The server serves the per-token product, softmax(sum_i lambda_i log pi_i(.|prefix)) at each
step (what the judged fit optimises by default, `family: served`); `family: sequence` optimises
the sequence-level product exp(sum_i lambda_i a_i(y)) / Z, which importance weights give
without any per-prefix normaliser (weights.judged). For one-token answers they are one family;
for two tokens they differ by the normaliser of the first step. This prints each family's
maximiser on a grid of lambda, its value, and the served family's value at the sequence-level
maximiser (what a fit of the sequence-level family gives up in what is served).

The judges reward what each policy prefers to the reference at sequence level (objective k:
a_k(y) - a_ref(y)), as win probabilities against the reference's own answers, ties half.

    .venv/bin/python -m bench.judged_families [--prompts 8]
"""

import argparse

import numpy as np
import torch

from demo.build import build_demo
from demo.tiny.pretrain import read_corpus
from mixer.manifest import load_manifest
from server.settings import Settings


def two_token_logprobs(model, prompt: list[int], vocab: int) -> tuple[np.ndarray, np.ndarray]:
    """log p(v1 | x) (V,) and log p(v2 | x, v1) (V, V), exactly, in one batched pass."""
    with torch.no_grad():
        first = torch.log_softmax(model(torch.tensor([prompt])).logits[0, -1].float(), -1)[:vocab]
        batch = torch.tensor([prompt + [v] for v in range(vocab)])
        second = torch.log_softmax(model(batch).logits[:, -1].float(), -1)[:, :vocab]
    return first.double().numpy(), second.double().numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=8)
    args = parser.parse_args()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    settings = Settings(demo="tiny")
    manifest = load_manifest(build_demo("tiny", settings.demo_dir))
    tokenizer = AutoTokenizer.from_pretrained(manifest.reference.path)
    models = [AutoModelForCausalLM.from_pretrained(c.path, dtype=torch.float32).eval() for c in manifest.components]
    vocab = len(tokenizer)
    prompts = [tokenizer(" ".join(t.split()[:3]))["input_ids"] for t in read_corpus()[3000 : 3000 + args.prompts]]
    grid = np.linspace(0, 1, 101)
    served_values, sequence_values = np.zeros((len(grid), 2)), np.zeros((len(grid), 2))
    for prompt in prompts:
        parts = [two_token_logprobs(m, prompt, vocab) for m in models]  # ref, policy 1, policy 2
        a = np.stack([first[:, None] + second for first, second in parts])  # (3, V, V) sequence log-probs
        implicit = a[1:] - a[0]  # (2, V, V)
        rewards = np.stack([implicit[0], implicit[1] - 0.3 * implicit[0]], axis=-1).reshape(-1, 2)  # (V*V, 2)
        ref = np.exp(a[0]).reshape(-1)
        order = [np.argsort(rewards[:, k]) for k in range(2)]
        win = np.zeros_like(rewards)
        for k in range(2):  # P(y beats a reference answer), ties half, by sorting (V*V is 4 million)
            ranked = rewards[order[k], k]
            below = np.concatenate([[0.0], np.cumsum(ref[order[k]])])
            left = np.searchsorted(ranked, ranked, side="left")
            right = np.searchsorted(ranked, ranked, side="right")
            win[order[k], k] = below[left] + 0.5 * (below[right] - below[left])
        for g, weight in enumerate(grid):
            w = np.array([weight, 1 - weight])
            z = np.einsum("k,kvw->vw", w, a[1:]).reshape(-1)
            sequence = np.exp(z - z.max())
            sequence /= sequence.sum()
            step1 = w @ np.stack([p[0] for p in parts[1:]])
            step1 = np.exp(step1 - np.logaddexp.reduce(step1))
            step2 = np.einsum("k,kvw->vw", w, np.stack([p[1] for p in parts[1:]]))
            step2 = np.exp(step2 - np.logaddexp.reduce(step2, axis=1, keepdims=True))
            served = (step1[:, None] * step2).reshape(-1)
            sequence_values[g] += sequence @ win / len(prompts)
            served_values[g] += served @ win / len(prompts)
    seq_best, served_best = int(sequence_values.min(1).argmax()), int(served_values.min(1).argmax())
    names = list(manifest.policy_names)
    print(f"tiny demo, {len(prompts)} prompts, every two-token answer ({vocab}^2 each); lambda = {names[0]}'s weight")
    print("| family optimised | maximiser | its min_k E[win] | served min_k E[win] there |")
    print("|---|---|---|---|")
    print(
        f"| sequence-level product (`family: sequence`) | {grid[seq_best]:.2f} | {sequence_values[seq_best].min():.4f} "
        f"| {served_values[seq_best].min():.4f} |"
    )
    print(
        f"| served per-token product (`family: served`) | {grid[served_best]:.2f} "
        f"| {served_values[served_best].min():.4f} | {served_values[served_best].min():.4f} |"
    )
    gap = np.abs(served_values - sequence_values).max()
    print(f"largest difference of the two families' E[win_k] over the grid: {gap:.4f}")


if __name__ == "__main__":
    main()
