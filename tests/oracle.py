"""The naive oracle: a plain transformers loop that computes the mixture step by step,
log_softmax(sum_k w_k * log_softmax(logits_k)), with no cache and nothing shared with the
server's code. An adapter component is peft's own model with the adapter *unmerged* (peft's
forward: base(x) + B(A(x)) * scaling), made here in memory; a soup of adapters is peft's
'cat' combination of them, unmerged too; a built soup of checkpoints is loaded from its folder."""

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM

from mixer.manifest import load_manifest


class MixtureOracle:
    def __init__(self, manifest_path: Path) -> None:
        manifest = load_manifest(manifest_path)
        self.names = [c.name for c in manifest.components]
        adapters = {p.name: p.adapter for p in manifest.policies if p.adapter is not None}
        self.models = [self._load(c, manifest.reference.path, adapters) for c in manifest.components]

    @staticmethod
    def _load(component, reference: Path, adapters: dict[str, Path]):
        from peft import PeftModel

        if component.adapter is None and component.soup is None:
            return AutoModelForCausalLM.from_pretrained(component.path, dtype=torch.float32).eval()
        base = AutoModelForCausalLM.from_pretrained(reference, dtype=torch.float32)
        if component.adapter is not None:
            return PeftModel.from_pretrained(base, str(component.adapter)).eval()
        used = {policy: w for policy, w in component.soup.items() if w > 0}
        names = list(used)
        model = PeftModel.from_pretrained(base, str(adapters[names[0]]), adapter_name=names[0])
        for policy in names[1:]:
            model.load_adapter(str(adapters[policy]), adapter_name=policy)
        model.add_weighted_adapter(names, [used[p] for p in names], "soup", combination_type="cat")
        model.set_adapter("soup")
        return model.eval()

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
