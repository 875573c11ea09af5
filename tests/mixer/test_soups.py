"""Reward soups built at load: the parameter average of full checkpoints, peft's exact
weighted sum of LoRA deltas, caching, and the manifest's checks."""

import pytest
import torch
import yaml
from peft import PeftModel
from transformers import AutoModelForCausalLM

from mixer.manifest import ManifestError, load_manifest
from tests.adapters import make_adapter
from tests.checkpoints import build_test_mixture, with_policies


def _params(folder) -> dict[str, torch.Tensor]:
    return dict(AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).state_dict())


def _manifest(folder, name: str, policies: list[dict], baselines: list[dict], **extra):
    spec = yaml.safe_load((folder / "manifest.yaml").read_text())
    spec = with_policies(spec, policies) | {"baselines": baselines, **extra}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp("soups")
    build_test_mixture(folder)
    make_adapter(folder / "ref", folder / "gamma-lora", seed=7)
    make_adapter(folder / "ref", folder / "delta-lora", seed=8, targets=["q_proj", "up_proj"])
    return folder


def test_a_soup_of_two_checkpoints_is_their_parameter_average(checkpoints, tmp_path):
    path = _manifest(
        checkpoints,
        "average",
        [{"name": "alpha", "path": "alpha"}, {"name": "beta", "path": "beta"}],
        [{"name": "soup", "soup": {"alpha": 3, "beta": 7}}],
    )
    manifest = load_manifest(path, tmp_path)
    soup = manifest.baselines[0]
    assert soup.soup == pytest.approx({"alpha": 0.3, "beta": 0.7})
    alpha, beta, built = _params(checkpoints / "alpha"), _params(checkpoints / "beta"), _params(soup.path)
    assert built.keys() == alpha.keys()
    for key in alpha:
        torch.testing.assert_close(built[key], 0.3 * alpha[key] + 0.7 * beta[key], rtol=0, atol=1e-6)
    assert manifest.weight_vector() == [0.0, 0.5, 0.5, 0.0]  # a baseline is never mixed
    assert load_manifest(path, tmp_path).baselines[0].path == soup.path  # cached


def test_a_lora_soup_is_the_reference_plus_the_weighted_adapter_deltas(checkpoints, tmp_path):
    path = _manifest(
        checkpoints,
        "lora",
        [{"name": "gamma", "adapter": "gamma-lora"}, {"name": "delta", "adapter": "delta-lora"}],
        [{"name": "soup", "soup": {"gamma": 0.25, "delta": 0.75}}, {"name": "only", "soup": {"gamma": 1}}],
        lora_mode="merged",  # a soup's checkpoint is built for the merged path (the shared base adds its factors)
    )
    manifest = load_manifest(path, tmp_path)
    reference = _params(checkpoints / "ref")
    merged = {}
    for name in ("gamma", "delta"):  # peft's own merge of each adapter, made here
        base = AutoModelForCausalLM.from_pretrained(checkpoints / "ref", dtype=torch.float32)
        merged[name] = (
            PeftModel.from_pretrained(base, str(checkpoints / f"{name}-lora")).merge_and_unload().state_dict()
        )
    soup, only = _params(manifest.baselines[0].path), _params(manifest.baselines[1].path)
    changed = 0
    for key, ref in reference.items():
        expected = ref + 0.25 * (merged["gamma"][key] - ref) + 0.75 * (merged["delta"][key] - ref)
        torch.testing.assert_close(soup[key], expected, rtol=0, atol=1e-5)
        torch.testing.assert_close(only[key], merged["gamma"][key], rtol=0, atol=1e-5)
        changed += not torch.equal(soup[key], ref)
    assert changed > 0


def test_changed_weights_build_another_soup(checkpoints, tmp_path):
    policies = [{"name": "alpha", "path": "alpha"}, {"name": "beta", "path": "beta"}]
    first = load_manifest(_manifest(checkpoints, "w1", policies, [{"name": "s", "soup": {"alpha": 1}}]), tmp_path)
    second = load_manifest(_manifest(checkpoints, "w2", policies, [{"name": "s", "soup": {"beta": 1}}]), tmp_path)
    assert first.baselines[0].path != second.baselines[0].path


@pytest.mark.parametrize(
    ("policies", "baselines", "message"),
    [
        (
            [{"name": "alpha", "soup": {"alpha": 1}}],
            [],
            "are soups; a soup is served alone: declare it under 'baselines'",
        ),
        ([{"name": "alpha", "path": "alpha"}], [{"name": "s", "soup": {"zeta": 1}}], "unknown policy 'zeta'"),
        ([{"name": "alpha", "path": "alpha"}], [{"name": "s", "soup": {"alpha": 0}}], "must not all be zero"),
        (
            [{"name": "alpha", "path": "alpha"}],
            [{"name": "s", "soup": {"alpha": 1}, "path": "beta"}],
            "exactly one of 'path' (a checkpoint), 'adapter' and 'soup'",
        ),
        ([{"name": "alpha", "path": "alpha"}], [{"name": "alpha", "path": "beta"}], "repeated: ['alpha']"),
    ],
)
def test_bad_soups_are_manifest_errors(checkpoints, tmp_path, policies, baselines, message):
    with pytest.raises(ManifestError) as error:
        load_manifest(_manifest(checkpoints, "bad", policies, baselines), tmp_path)
    assert message in str(error.value)
