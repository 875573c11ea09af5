"""One manifest, served each way the benchmark compares: the same components with
`lora_mode` forced to shared or merged, and the full checkpoints a transformers loop loads."""

from pathlib import Path

import yaml

from mixer.lora.merge import merge_adapter
from mixer.manifest import TOKENIZER_FILES, Manifest, load_manifest

# Modes beyond the manifest's lora_mode: the shared base with other server settings
# (server.settings): an earlier path kept until the bench has compared them, and compiled.
SETTINGS_OF = {
    "shared_per_component": ("shared", {"delta_gemms": "per_component"}),
    "shared_compiled": ("shared", {"enforce_eager": False}),
}


def served_in(manifest_path: Path, folder: Path, mode: str) -> tuple[Manifest, dict]:
    """The manifest as a bench mode serves it (a variant written to folder/<mode>.yaml, merges
    in folder/merged) and the server settings that mode adds."""
    lora_mode, settings = SETTINGS_OF.get(mode, (mode, {}))
    spec = variant(Path(manifest_path), folder / f"{mode}.yaml", lora_mode=lora_mode)
    return load_manifest(spec, folder / "merged"), settings


def modes_of(manifest_path: Path) -> list[str]:
    """The modes a manifest can be served in: both where the shared base serves it exactly
    (shared first: the default), else merged only."""
    return ["shared", "merged"] if load_manifest(manifest_path).serving.mode == "shared" else ["merged"]


def variant(manifest_path: Path, out: Path, policies: int | None = None, **fields) -> Path:
    """A copy of the manifest at `out` (paths made absolute) with `fields` set (e.g. lora_mode)
    and only its first `policies` policies (weights renormalised), or all of them."""
    spec = yaml.safe_load(manifest_path.read_text())
    base = manifest_path.resolve().parent
    for entry in [spec["reference"], *spec["policies"], *spec.get("baselines", [])]:
        for key in ("path", "adapter"):
            if entry.get(key) is not None:
                entry[key] = str((base / entry[key]).resolve())
    spec["prompts"] = {name: str((base / path).resolve()) for name, path in spec.get("prompts", {}).items()}
    if policies is not None:
        spec["policies"] = spec["policies"][:policies]
        kept = {p["name"] for p in spec["policies"]}
        spec["weights"] = {name: w for name, w in spec["weights"].items() if name in kept}
        spec["baselines"] = []
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(spec | fields, sort_keys=False))
    return out


def loop_checkpoints(manifest: Manifest, merge_dir: Path) -> list[Path]:
    """Every component as a full checkpoint, for the transformers loop: an adapter merged into
    the reference (peft, cached like the server's merges)."""
    return [
        merge_adapter(c.name, c.adapter, manifest.reference.path, merge_dir, TOKENIZER_FILES)
        if c.adapter is not None
        else c.path
        for c in manifest.components
    ]
