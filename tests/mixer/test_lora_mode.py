"""Which mode a manifest is served in, and why: shared where the shared base is exact (every
component but the reference a LoRA adapter of the decoder projections, of a family it
knows), merged otherwise with the reason; forced modes; what each component holds; peft's
scalings; and nothing merged or built when served shared."""

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from peft import PeftModel
from safetensors import safe_open
from transformers import AutoModelForCausalLM

from mixer.lora.adapter import FACTOR_KEY, expected_shapes, read_tensors
from mixer.lora.factors import FUSED_INTO, Factor, fuse, whole_layout
from mixer.lora.mode import lora_terms
from mixer.manifest import ManifestError, load_manifest
from tests.adapters import LORA_POLICIES, make_adapter, odd_base
from tests.checkpoints import with_policies


def manifest_with(lora_manifest: Path, tmp_path: Path, **changes) -> Path:
    """The LoRA test mixture with fields replaced (policies given as {name: entry}); paths absolute."""
    spec = yaml.safe_load(lora_manifest.read_text())
    base = lora_manifest.parent
    spec["reference"]["path"] = str(base / "ref")
    spec["policies"] = [{"name": n, "adapter": str(base / f"{n}-lora")} for n in LORA_POLICIES]
    if "policies" in changes:
        spec = with_policies(spec, [{"name": n, **entry} for n, entry in changes.pop("policies").items()])
    path = tmp_path / "manifest.yaml"
    path.write_text(yaml.safe_dump(spec | changes))
    return path


def elements(file: Path) -> int:
    with safe_open(str(file), framework="pt") as handle:
        return sum(torch.Size(handle.get_slice(k).get_shape()).numel() for k in handle.keys())  # noqa: SIM118


def fused_elements(adapter: Path, reference: Path) -> int:
    """Elements of the deltas fuse() builds from an adapter's factors, counted on the matrices it makes."""
    tensors = read_tensors(adapter)
    sizes = expected_shapes(json.loads((reference / "config.json").read_text()))
    by_layer: dict = {}
    for key, a in tensors.items():
        match = FACTOR_KEY.match(key)
        if match and match["factor"] == "A":
            found = Factor(match["proj"], a, tensors[key.replace("lora_A", "lora_B")], 1.0)
            by_layer.setdefault((match["layer"], FUSED_INTO[match["proj"]]), []).append(found)
    made = []
    for (_, fused), factors in by_layer.items():
        fuse(factors, whole_layout(fused, sizes), torch.float32, "cpu", lambda matrix: made.append(matrix.numel()))
    return sum(made)


def test_adapters_on_the_reference_are_served_shared_and_hold_only_their_deltas(lora_manifest, tmp_path):
    manifest = load_manifest(lora_manifest, tmp_path / "merged")
    assert manifest.serving.mode == "shared" and manifest.lora_mode == "auto"
    folder = lora_manifest.parent
    held = manifest.serving.weight_bytes
    assert held["ref"] == 4 * elements(folder / "ref" / "model.safetensors")
    for name in LORA_POLICIES:
        adapter = folder / f"{name}-lora"
        assert held[name] == 4 * fused_elements(adapter, folder / "ref")
        # the factors, and zeros where a factor does not feed a projection of its fused layer
        assert elements(adapter / "adapter_model.safetensors") < held[name] / 4 and held[name] < held["ref"] / 4
    assert not (tmp_path / "merged").exists()  # no merge, no model loaded: the shared base reads the factors


def test_full_checkpoints_are_served_merged_and_say_why(test_manifest):
    manifest = load_manifest(test_manifest)
    assert manifest.serving.mode == "merged"
    assert manifest.serving.reason == "component 'alpha' is a full checkpoint, not a LoRA adapter on the reference"
    size = manifest.serving.weight_bytes
    assert size["ref"] == size["alpha"] == size["beta"] > 0


def test_a_manifest_may_force_either_mode(lora_manifest, tmp_path):
    merged = load_manifest(manifest_with(lora_manifest, tmp_path, lora_mode="merged"), tmp_path / "merged")
    assert merged.serving.mode == "merged" and merged.policies[0].path.parent == tmp_path / "merged"
    assert merged.serving.weight_bytes["alpha"] == merged.serving.weight_bytes["ref"]
    checkpoint = {
        "alpha": {"path": str(lora_manifest.parent / "alpha")},
        "beta": {"adapter": str(lora_manifest.parent / "beta-lora")},
    }
    path = manifest_with(lora_manifest, tmp_path, policies=checkpoint, lora_mode="shared")
    with pytest.raises(ManifestError, match="lora_mode is 'shared', but component 'alpha' is a full checkpoint"):
        load_manifest(path)


@pytest.mark.parametrize(
    "lora,reason",
    [
        ({"use_dora": True}, "it uses DoRA"),
        ({"modules_to_save": ["lm_head"]}, "it uses modules_to_save"),
        ({"targets": ["q_proj", "lm_head"]}, "it changes 'lm_head'"),
        ({"targets": ["q_proj", "embed_tokens"]}, "it changes 'model.embed_tokens'"),
    ],
)
def test_what_the_shared_base_cannot_serve_exactly_is_served_merged(lora_manifest, tmp_path, lora, reason):
    adapter = make_adapter(lora_manifest.parent / "ref", tmp_path / "odd-lora", **({"targets": ["q_proj"]} | lora))
    policies = {"alpha": {"adapter": str(lora_manifest.parent / "alpha-lora")}, "odd": {"adapter": str(adapter)}}
    manifest = load_manifest(manifest_with(lora_manifest, tmp_path, policies=policies))
    assert manifest.serving.mode == "merged"
    assert manifest.serving.reason.startswith(f"adapter 'odd': {reason}")
    with pytest.raises(ManifestError, match=f"lora_mode is 'shared', but adapter 'odd': {reason}"):
        load_manifest(manifest_with(lora_manifest, tmp_path, policies=policies, lora_mode="shared"))


def test_another_architecture_is_served_merged(lora_manifest, tmp_path):
    reference = tmp_path / "ref"
    shutil.copytree(lora_manifest.parent / "ref", reference)
    config = json.loads((reference / "config.json").read_text())
    (reference / "config.json").write_text(json.dumps(config | {"architectures": ["GPTNeoXForCausalLM"]}))
    path = manifest_with(lora_manifest, tmp_path)
    spec = yaml.safe_load(path.read_text())
    spec["reference"]["path"] = str(reference)
    path.write_text(yaml.safe_dump(spec))
    manifest = load_manifest(path)
    assert manifest.serving.mode == "merged" and "the reference is a GPTNeoXForCausalLM" in manifest.serving.reason


def test_an_adapter_for_another_base_is_refused_when_shared_is_forced(lora_manifest, tmp_path):
    adapter = make_adapter(odd_base(lora_manifest, hidden=192), tmp_path / "wide-lora")
    policies = {"alpha": {"adapter": str(lora_manifest.parent / "alpha-lora")}, "wide": {"adapter": str(adapter)}}
    path = manifest_with(lora_manifest, tmp_path, policies=policies, lora_mode="shared")
    with pytest.raises(ManifestError, match=r"adapter 'wide': it does not fit the reference: .* has shape \(4, 192\)"):
        load_manifest(path)


def test_scalings_are_peft_own(lora_manifest):
    """rsLoRA, rank_pattern and alpha_pattern (the 'beta' policy uses all three) give each
    module the scaling peft's own LoRA layer has."""
    manifest = load_manifest(lora_manifest)
    base = AutoModelForCausalLM.from_pretrained(manifest.reference.path, dtype=torch.float32)
    for policy in manifest.policies:
        (term,) = lora_terms(manifest, policy)
        model = PeftModel.from_pretrained(base, str(policy.adapter), adapter_name=policy.name)
        expected = {
            name.removeprefix("base_model.model."): module.scaling[policy.name]
            for name, module in model.named_modules()
            if isinstance(getattr(module, "scaling", None), dict) and policy.name in module.scaling
        }
        assert term["scalings"] == pytest.approx(expected)
        base = model.unload()
    assert len(set(lora_terms(manifest, manifest.policies[1])[0]["scalings"].values())) == 3  # patterns applied
