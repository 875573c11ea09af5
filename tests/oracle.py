"""The naive oracle: a plain transformers loop that computes the mixture step by step,
log_softmax(sum_k w_k * log_softmax(logits_k)), with no cache and nothing shared with the
server's code. An adapter component is peft's own merge of the adapter into the reference,
made here in memory (not the server's cached merge)."""

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM

from mixer.manifest import load_manifest


class MixtureOracle:
    def __init__(self, manifest_path: Path) -> None:
        manifest = load_manifest(manifest_path)
        self.names = [c.name for c in manifest.components]
        self.models = [self._load(c, manifest.reference.path) for c in manifest.components]

    @staticmethod
    def _load(component, reference: Path):
        if component.adapter is None:
            return AutoModelForCausalLM.from_pretrained(component.path, dtype=torch.float32).eval()
        from peft import PeftModel

        base = AutoModelForCausalLM.from_pretrained(reference, dtype=torch.float32)
        return PeftModel.from_pretrained(base, str(component.adapter)).merge_and_unload().eval()

    def vector(self, weights: dict[str, float]) -> list[float]:
        total = sum(weights.values())
        return [weights.get(name, 0.0) / total for name in self.names]

    @torch.no_grad()
    def next_logprobs(self, ids: list[int], weights: list[float]) -> torch.Tensor:
        """(V,) log-probs of the mixture for the token after `ids`."""
        mixed = None
        for model, weight in zip(self.models, weights, strict=True):
            if weight == 0:
                continue
            logits = model(torch.tensor([ids])).logits[0, -1].float()
            term = weight * torch.log_softmax(logits, dim=-1)
            mixed = term if mixed is None else mixed + term
        return torch.log_softmax(mixed, dim=-1)

    @torch.no_grad()
    def sequence_logprobs(self, prompt: list[int], response: list[int]) -> list[float]:
        """log pi_k(response | prompt) for every component, one full forward pass each."""
        ids = torch.tensor([prompt + response])
        totals = []
        for model in self.models:
            logprobs = torch.log_softmax(model(ids).logits[0, :-1].float(), dim=-1)
            positions = torch.arange(len(prompt) - 1, ids.shape[1] - 1)
            totals.append(float(logprobs[positions, ids[0, len(prompt) :]].sum()))
        return totals

    def check_greedy(
        self, prompt: list[int], weights: list[float], tokens: list[int], logprobs: list[float], tol: float = 1e-4
    ) -> None:
        """Served greedy tokens and their logprobs equal the loop's, step by step.

        Where the loop's top two tokens are within tol of each other, either is a correct
        greedy choice; the comparison stops there (the continuations legitimately differ)."""
        ids = list(prompt)
        for step, (token, logprob) in enumerate(zip(tokens, logprobs, strict=True)):
            expected = self.next_logprobs(ids, weights)
            best = int(expected.argmax())
            if token != best:
                gap = float(expected[best] - expected[token])
                assert gap < tol, f"step {step}: served {token}, loop's argmax {best} is better by {gap}"
                return
            assert abs(float(expected[token]) - logprob) < tol, (
                f"step {step}: logprob {logprob} vs loop {float(expected[token])}"
            )
            ids.append(token)

    def check_sampled(
        self, prompt: list[int], weights: list[float], tokens: list[int], logprobs: list[float], tol: float = 1e-4
    ) -> None:
        """Each sampled token's returned logprob equals the loop's log-prob of that token."""
        ids = list(prompt)
        for step, (token, logprob) in enumerate(zip(tokens, logprobs, strict=True)):
            expected = float(self.next_logprobs(ids, weights)[token])
            assert abs(expected - logprob) < tol, f"step {step}: token {token} logprob {logprob} vs loop {expected}"
            ids.append(token)
