"""The merged path: LoRA adapters merged into full checkpoints with peft, and cached.

Where the shared base cannot serve a mixture exactly (mixer.lora.mode says when), every
component is a full sub-model, so an adapter is merged into the reference once, by peft's
`merge_and_unload`, and the merged folder is cached under a hash of the adapter's and the
reference's files: a second start reuses it, a changed adapter (or reference) is merged anew.

Checks name the problem before anything is served: the folder is missing or is not a PEFT
adapter, the adapter type cannot be merged, or the adapter does not fit the reference (a
module it targets is absent, a layer it was trained for does not exist, a shape differs).
"""

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path

from mixer.lora.adapter import AdapterError, read_adapter_config

# Files that define a checkpoint's weights; a change in any of them changes the merge.
CHECKPOINT_SUFFIXES = (".safetensors", ".bin", ".json")
SOURCE_FILE = "mpo_merge.json"


def files_digest(folders: list[Path]) -> str:
    """sha256 over the name and content of every weight and config file in the folders."""
    digest = hashlib.sha256()
    for folder in folders:
        for file in sorted(folder.iterdir()):
            if file.is_file() and file.suffix in CHECKPOINT_SUFFIXES:
                digest.update(file.name.encode() + b"\0")
                with file.open("rb") as handle:
                    while chunk := handle.read(1 << 24):
                        digest.update(chunk)
    return digest.hexdigest()


def merged_folder(cache_root: Path, adapter: Path, reference: Path) -> Path:
    """Where the merge of this adapter into this reference is cached."""
    return cache_root / files_digest([adapter, reference])[:20]


def merge_adapter(
    name: str, adapter: Path, reference: Path, cache_root: Path, tokenizer_files: tuple[str, ...]
) -> Path:
    """The full checkpoint of reference + adapter (merged by peft), built once and cached."""
    read_adapter_config(name, adapter)
    target = merged_folder(cache_root, adapter, reference)
    if (target / SOURCE_FILE).is_file():
        return target
    staging = staging_folder(target)
    merged, dtype = _merge_with_peft(name, adapter, reference)
    merged.to(dtype).save_pretrained(staging)
    for file in tokenizer_files:  # the merged policy tokenises exactly as the reference
        if (reference / file).is_file():
            shutil.copy(reference / file, staging / file)
    (staging / SOURCE_FILE).write_text(json.dumps({"adapter": str(adapter), "reference": str(reference)}, indent=2))
    publish_folder(staging, target)
    _remove_stale_merges(cache_root, adapter, reference, keep=target)
    return target


def staging_folder(target: Path) -> Path:
    """A folder beside `target` that only this process writes (replicas sharing a data volume
    may build the same folder at the same time)."""
    staging = target.with_name(f"{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    shutil.rmtree(staging, ignore_errors=True)
    return staging


def publish_folder(staging: Path, target: Path) -> None:
    """Move a finished staging folder to `target` in one rename; if another process published
    it first, keep theirs."""
    try:
        staging.rename(target)
    except OSError:
        if not target.is_dir():
            raise
        shutil.rmtree(staging, ignore_errors=True)


def _merge_with_peft(name: str, adapter: Path, reference: Path):
    """(merged model, dtype to save it in): the reference in float32 with the adapter merged."""
    import torch
    from peft import PeftConfig, get_peft_model, get_peft_model_state_dict, load_peft_weights, set_peft_model_state_dict
    from transformers import AutoModelForCausalLM

    stored = json.loads((reference / "config.json").read_text())
    saved_dtype = getattr(torch, stored.get("dtype") or stored.get("torch_dtype") or "float32")
    base = AutoModelForCausalLM.from_pretrained(reference, dtype=torch.float32)
    try:
        saved = load_peft_weights(str(adapter), device="cpu")
    except Exception as err:  # noqa: BLE001 - a corrupt or truncated file, in whatever format
        raise AdapterError(f"component {name!r}: cannot read the weights of adapter {str(adapter)!r}: {err}") from None
    untie_adapted_embeddings(base, saved.keys())
    config = PeftConfig.from_pretrained(str(adapter))
    config.inference_mode = True
    try:
        model = get_peft_model(base, config)
    except ValueError as err:  # e.g. "Target modules {...} not found in the base model"
        raise AdapterError(f"component {name!r}: adapter {str(adapter)!r} does not fit the reference: {err}") from None
    expected = get_peft_model_state_dict(model)
    problems = [f"{key} is not in the reference" for key in sorted(saved.keys() - expected.keys())]
    problems += [f"{key} is missing from the adapter" for key in sorted(expected.keys() - saved.keys())]
    problems += [
        f"{key} has shape {tuple(saved[key].shape)}, the reference needs {tuple(expected[key].shape)}"
        for key in sorted(saved.keys() & expected.keys())
        if saved[key].shape != expected[key].shape
    ]
    if problems:
        shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
        raise AdapterError(
            f"component {name!r}: adapter {str(adapter)!r} was not trained on a model like the reference "
            f"{str(reference)!r}: {shown}"
        )
    set_peft_model_state_dict(model, {key: value.float() for key, value in saved.items()})
    return model.merge_and_unload(), saved_dtype


def untie_adapted_embeddings(base, adapted: Iterable[str]) -> None:
    """Give the model its own lm_head where its embeddings are tied and an adapter changes
    either side. Merged into a tied matrix, a LoRA on lm_head would change the input
    embeddings too (and one on embed_tokens the output): measured on the tests' tiny Llama,
    logits 14 off what peft computes with the adapter unmerged. Untied, the merge is exact."""
    import torch

    if base.config.tie_word_embeddings and any("lm_head" in k or "embed_tokens" in k for k in adapted):
        base.config.tie_word_embeddings = False
        base.lm_head.weight = torch.nn.Parameter(base.get_input_embeddings().weight.detach().clone())


def _remove_stale_merges(cache_root: Path, adapter: Path, reference: Path, keep: Path) -> None:
    """Earlier merges of the same adapter folder into the same reference (since changed)."""
    for folder in cache_root.iterdir():
        source = folder / SOURCE_FILE
        if folder == keep or ".tmp-" in folder.name or not source.is_file():
            continue
        recorded = json.loads(source.read_text())
        if recorded == {"adapter": str(adapter), "reference": str(reference)}:
            shutil.rmtree(folder, ignore_errors=True)
