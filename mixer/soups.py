"""Reward soups (Rame et al., 2023), the baseline MPO is compared with: one model whose
parameters interpolate the policies', theta = theta_ref + sum_k lambda_k (theta_k - theta_ref).

With lambda on the simplex this is sum_k lambda_k theta_k. When every policy in the soup is a
LoRA adapter on the reference it is exactly W + sum_k lambda_k s_k B_k A_k, which peft builds as
one adapter (`add_weighted_adapter(..., combination_type="cat")`) and merges; otherwise the
full checkpoints (adapters merged) are averaged parameter by parameter. Built once at load,
cached under a hash of the weights and every ingredient's files, then served as a model of its
own: one model per step, where the mixture runs K.
"""

import hashlib
import json
import shutil
from pathlib import Path

from mixer.lora.adapter import tensor_shapes
from mixer.lora.merge import files_digest, publish_folder, staging_folder, untie_adapted_embeddings

SOURCE_FILE = "mpo_soup.json"


class SoupError(ValueError):
    """A soup that cannot be built; the message names the soup and the problem."""


def soup_folder(cache_root: Path, weights: dict[str, float], sources: dict[str, Path], reference: Path) -> Path:
    """Where this soup (weights over these ingredient folders on this reference) is cached."""
    digest = hashlib.sha256(json.dumps(sorted(weights.items())).encode())
    for name in sorted(sources):
        digest.update(name.encode() + b"\0" + files_digest([sources[name]]).encode())
    digest.update(files_digest([reference]).encode())
    return cache_root / f"soup-{digest.hexdigest()[:20]}"


def build_soup(
    name: str,
    weights: dict[str, float],
    checkpoints: dict[str, Path],
    adapters: dict[str, Path],
    reference: Path,
    cache_root: Path,
    tokenizer_files: tuple[str, ...],
) -> Path:
    """The soup's checkpoint folder, built once and cached.

    weights: policy -> lambda (on the simplex; zero weights are left out); checkpoints: every
    policy's full checkpoint (adapters already merged); adapters: the policies that are LoRA
    adapters, by their adapter folder."""
    used = {policy: w for policy, w in weights.items() if w > 0}
    from_adapters = all(policy in adapters for policy in used)
    sources = {p: adapters[p] if from_adapters else checkpoints[p] for p in used}
    target = soup_folder(cache_root, used, sources, reference)
    if (target / SOURCE_FILE).is_file():
        return target
    import torch

    stored = json.loads((reference / "config.json").read_text())
    dtype = getattr(torch, stored.get("dtype") or stored.get("torch_dtype") or "float32")
    model = _lora_soup(used, adapters, reference) if from_adapters else _parameter_average(name, used, checkpoints)
    staging = staging_folder(target)
    model.to(dtype).save_pretrained(staging)
    for file in tokenizer_files:  # the soup tokenises exactly as the reference
        if (reference / file).is_file():
            shutil.copy(reference / file, staging / file)
    recipe = {"soup": name, "weights": used, "method": "lora_cat" if from_adapters else "parameter_average"}
    (staging / SOURCE_FILE).write_text(
        json.dumps(recipe | {"sources": {k: str(v) for k, v in sources.items()}}, indent=2)
    )
    publish_folder(staging, target)
    return target


def _lora_soup(weights: dict[str, float], adapters: dict[str, Path], reference: Path):
    """The reference with sum_k lambda_k s_k B_k A_k merged: peft's 'cat' combination."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(reference, dtype=torch.float32)
    names = list(weights)
    untie_adapted_embeddings(base, [key for p in names for key in tensor_shapes(adapters[p])])
    model = PeftModel.from_pretrained(base, str(adapters[names[0]]), adapter_name=names[0])
    for policy in names[1:]:
        model.load_adapter(str(adapters[policy]), adapter_name=policy)
    model.add_weighted_adapter(names, [weights[p] for p in names], "soup", combination_type="cat")
    return model.merge_and_unload(adapter_names=["soup"])


def _parameter_average(name: str, weights: dict[str, float], checkpoints: dict[str, Path]):
    """sum_k lambda_k theta_k over full checkpoints of one architecture, in float32."""
    import torch
    from transformers import AutoModelForCausalLM

    total = None
    first = None
    for policy, weight in weights.items():
        model = AutoModelForCausalLM.from_pretrained(checkpoints[policy], dtype=torch.float32)
        state = model.state_dict()
        if total is None:
            first, total = model, {k: weight * v for k, v in state.items()}
            continue
        different = sorted(k for k in state.keys() ^ total.keys()) + sorted(
            k for k in state.keys() & total.keys() if state[k].shape != total[k].shape
        )
        if different:
            raise SoupError(
                f"soup {name!r}: policy {policy!r} does not have the same parameters as the others "
                f"(e.g. {different[0]}); a soup averages checkpoints of one architecture"
            )
        for key, value in state.items():
            total[key] += weight * value
    if first is None:
        raise ValueError(f"soup {name!r} has no policy with a positive weight")
    first.load_state_dict(total)
    return first
