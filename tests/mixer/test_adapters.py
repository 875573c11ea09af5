"""LoRA adapters in the manifest: the clear errors, the cached merge, and the merged weights."""

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from mixer.lora.merge import SOURCE_FILE
from mixer.manifest import ManifestError, load_manifest
from tests.adapters import build_adapter_mixture, make_adapter, odd_base, set_peft_type
from tests.checkpoints import with_policies


@pytest.fixture(scope="module")
def adapter_manifest(test_manifest) -> Path:
    return build_adapter_mixture(test_manifest.parent)


def variant(manifest: Path, tmp_path: Path, gamma: dict) -> Path:
    """The adapter mixture with another 'gamma' entry (paths made absolute)."""
    spec = yaml.safe_load(manifest.read_text())
    base = manifest.parent
    spec["reference"]["path"] = str(base / "ref")
    spec = with_policies(spec, [{"name": "alpha", "path": str(base / "alpha")}, {"name": "gamma", **gamma}])
    path = tmp_path / "variant.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_adapter_is_merged_once_and_equals_peft_merge(adapter_manifest, tmp_path):
    manifest = load_manifest(adapter_manifest, tmp_path / "merged")
    gamma = manifest.policies[1]
    assert gamma.adapter == (adapter_manifest.parent / "gamma-lora").resolve()
    assert gamma.path.parent == tmp_path / "merged" and (gamma.path / SOURCE_FILE).is_file()
    # The merged checkpoint serves with the reference's tokenizer.
    assert (gamma.path / "tokenizer.json").read_bytes() == (manifest.reference.path / "tokenizer.json").read_bytes()
    base = AutoModelForCausalLM.from_pretrained(manifest.reference.path, dtype=torch.float32)
    expected = PeftModel.from_pretrained(base, str(gamma.adapter)).merge_and_unload().state_dict()
    merged = load_file(gamma.path / "model.safetensors")
    for name, tensor in merged.items():
        assert torch.equal(tensor, expected[name]), name
    reference = load_file(manifest.reference.path / "model.safetensors")
    assert not torch.equal(
        merged["model.layers.0.self_attn.q_proj.weight"], reference["model.layers.0.self_attn.q_proj.weight"]
    )

    # A second load reuses the merge.
    written = (gamma.path / "model.safetensors").stat().st_mtime_ns
    again = load_manifest(adapter_manifest, tmp_path / "merged").policies[1]
    assert again.path == gamma.path and (again.path / "model.safetensors").stat().st_mtime_ns == written


def test_changed_adapter_is_merged_again_and_the_old_merge_removed(test_manifest, tmp_path):
    adapter = make_adapter(test_manifest.parent / "ref", tmp_path / "lora", seed=1)
    path = variant(build_adapter_mixture(test_manifest.parent), tmp_path, {"adapter": str(adapter)})
    first = load_manifest(path, tmp_path / "merged").policies[1].path
    make_adapter(test_manifest.parent / "ref", adapter, seed=2)
    second = load_manifest(path, tmp_path / "merged").policies[1].path
    assert second != first and second.is_dir() and not first.exists()


def test_manifest_without_merge_dir_checks_adapters_but_merges_nothing(adapter_manifest):
    manifest = load_manifest(adapter_manifest)
    assert manifest.policies[1].path is None and manifest.policies[1].adapter is not None


@pytest.mark.parametrize(
    "gamma,fragment",
    [
        ({"adapter": "/nonexistent/lora"}, "adapter folder '/nonexistent/lora' does not exist"),
        ({"path": "x", "adapter": "y"}, "exactly one of 'path'"),
        ({}, "exactly one of 'path'"),
    ],
)
def test_adapter_entry_errors(adapter_manifest, tmp_path, gamma, fragment):
    with pytest.raises(ManifestError, match=fragment):
        load_manifest(variant(adapter_manifest, tmp_path, gamma), tmp_path / "merged")


def test_a_full_checkpoint_is_not_an_adapter(adapter_manifest, tmp_path):
    path = variant(adapter_manifest, tmp_path, {"adapter": str(adapter_manifest.parent / "beta")})
    with pytest.raises(ManifestError, match="is not a PEFT adapter folder .*use 'path'"):
        load_manifest(path, tmp_path / "merged")


def test_the_reference_cannot_be_an_adapter(adapter_manifest, tmp_path):
    spec = yaml.safe_load(adapter_manifest.read_text())
    spec["reference"] = {"name": "ref", "adapter": str(adapter_manifest.parent / "gamma-lora")}
    path = tmp_path / "ref-adapter.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(ManifestError, match="reference must be a full checkpoint"):
        load_manifest(path, tmp_path / "merged")


def test_unsupported_adapter_type(adapter_manifest, tmp_path):
    adapter = tmp_path / "ia3"
    shutil.copytree(adapter_manifest.parent / "gamma-lora", adapter)
    set_peft_type(adapter, "IA3")
    with pytest.raises(ManifestError, match="adapter type 'IA3' is not supported; supported: \\['LORA'\\]"):
        load_manifest(variant(adapter_manifest, tmp_path, {"adapter": str(adapter)}), tmp_path / "merged")


def test_adapter_without_weights(adapter_manifest, tmp_path):
    adapter = tmp_path / "empty"
    adapter.mkdir()
    shutil.copy(adapter_manifest.parent / "gamma-lora" / "adapter_config.json", adapter)
    with pytest.raises(ManifestError, match="holds no adapter weights"):
        load_manifest(variant(adapter_manifest, tmp_path, {"adapter": str(adapter)}), tmp_path / "merged")


@pytest.mark.parametrize(
    "shape,fragment",
    [
        ({"hidden": 192}, r"was not trained on a model like the reference .*has shape \(4, 192\), the reference needs"),
        ({"layers": 3}, r"was not trained on a model like the reference .*layers\.2\..* is not in the reference"),
    ],
)
def test_adapter_for_another_base_is_refused(test_manifest, adapter_manifest, tmp_path, shape, fragment):
    adapter = make_adapter(odd_base(test_manifest, **shape), tmp_path / "odd-lora")
    path = variant(adapter_manifest, tmp_path, {"adapter": str(adapter)})
    with pytest.raises(ManifestError, match=fragment):
        load_manifest(path, tmp_path / "merged")
    assert not any((tmp_path / "merged").glob("*/" + SOURCE_FILE))


def test_adapter_targeting_modules_the_reference_lacks(adapter_manifest, tmp_path):
    adapter = tmp_path / "gpt2-lora"
    shutil.copytree(adapter_manifest.parent / "gamma-lora", adapter)
    config = json.loads((adapter / "adapter_config.json").read_text())
    config["target_modules"] = ["c_attn"]
    (adapter / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(ManifestError, match="does not fit the reference: .*c_attn"):
        load_manifest(variant(adapter_manifest, tmp_path, {"adapter": str(adapter)}), tmp_path / "merged")
