"""Manifest validation against real (tiny) checkpoints, and the generated model folder."""

import json
import shutil
from pathlib import Path

import pytest
import yaml

from mixer.manifest import ARCHITECTURE, MIXTURE_CONFIG_KEY, ManifestError, load_manifest, write_model_folder
from tests.checkpoints import with_policies


def write(folder: Path, **changes) -> Path:
    base = yaml.safe_load((folder / "manifest.yaml").read_text())
    if "policies" in changes:
        base = with_policies(base, changes["policies"])
    base.update(changes)
    path = folder / "variant.yaml"
    path.write_text(yaml.safe_dump(base))
    return path


def test_valid_manifest_resolves_paths_and_defaults(test_manifest):
    manifest = load_manifest(test_manifest)
    assert [c.name for c in manifest.components] == ["ref", "alpha", "beta"]
    assert manifest.reference.path == (test_manifest.parent / "ref").resolve()
    assert manifest.weights == {"alpha": 0.5, "beta": 0.5}
    assert manifest.weight_vector() == [0.0, 0.5, 0.5]


@pytest.mark.parametrize(
    "changes,fragment",
    [
        ({"policies": [{"name": "alpha", "path": "missing"}], "weights": {"alpha": 1}}, "does not exist"),
        ({"policies": [{"name": "alpha", "path": "alpha"}, {"name": "alpha", "path": "beta"}]}, "unique"),
        (
            {"policies": [{"name": "Alpha.1", "path": "alpha"}], "weights": {"Alpha.1": 1}},
            "policies.0.name: .*must match",
        ),
        ({"weights": {"alpha": -1, "beta": 1}}, "non-negative"),
        ({"weights": {"alpha": 0, "beta": 0}}, "not all be zero"),
        ({"weights": {"gamma": 1}}, "unknown policy"),
        ({"max_model_len": 10_000}, "exceeds"),
        ({"name": "alpha"}, "must differ"),
        ({"surprise": 1}, "surprise: extra inputs"),
        ({"tensor_parallel_size": 0}, "tensor_parallel_size"),
        ({"pipeline_parallel_size": 2}, "pipeline_parallel_size > 1 is not supported"),
        ({"objectives": {"gamma": "sentiment"}}, r"objectives \['gamma'\] are not policies"),
        ({"prompts": {"fit": "missing.jsonl"}}, "prompts: files do not exist"),
        ({"prompts": {"Fit Set": "prompts.jsonl"}}, "prompt set names"),
    ],
)
def test_invalid_manifests_are_refused_with_a_reason(test_manifest, changes, fragment):
    with pytest.raises(ManifestError, match=f"(?i){fragment}"):
        load_manifest(write(test_manifest.parent, **changes))


def test_components_must_share_the_tokenizer(test_manifest, tmp_path):
    odd = tmp_path / "odd"
    shutil.copytree(test_manifest.parent / "beta", odd)
    tokenizer = json.loads((odd / "tokenizer.json").read_text())
    tokenizer["model"]["vocab"]["zzzz"] = len(tokenizer["model"]["vocab"])
    (odd / "tokenizer.json").write_text(json.dumps(tokenizer))
    path = write(
        test_manifest.parent, policies=[{"name": "alpha", "path": "alpha"}, {"name": "beta", "path": str(odd)}]
    )
    with pytest.raises(ManifestError, match="tokenizer"):
        load_manifest(path)


def test_missing_or_malformed_file(tmp_path):
    with pytest.raises(ManifestError, match="does not exist"):
        load_manifest(tmp_path / "none.yaml")
    (tmp_path / "bad.yaml").write_text("reference: [unclosed")
    with pytest.raises(ManifestError, match="not valid YAML"):
        load_manifest(tmp_path / "bad.yaml")


def test_model_folder_names_our_architecture_and_components(test_manifest, tmp_path):
    manifest = load_manifest(test_manifest)
    folder = write_model_folder(manifest, tmp_path / "model")
    config = json.loads((folder / "config.json").read_text())
    assert config["architectures"] == [ARCHITECTURE]
    section = config[MIXTURE_CONFIG_KEY]
    assert [(c["name"], c["role"]) for c in section["components"]] == [
        ("ref", "reference"),
        ("alpha", "policy"),
        ("beta", "policy"),
    ]
    assert section["default_weights"] == [0.0, 0.5, 0.5]
    assert (folder / "tokenizer.json").read_bytes() == (manifest.reference.path / "tokenizer.json").read_bytes()
    assert (folder / "mixture.safetensors").is_file() and not (tmp_path / "model.tmp").exists()
