"""The mixture split by tensor parallelism must serve what one process serves, for the default
mixture, per-request weights and single components. Two ways to run the two ranks:

- "mp": vLLM's CPU backend runs one worker process per rank, each on its own core
  (VLLM_CPU_OMP_THREADS_BIND '0|1');
- "ray": vLLM's Ray executor over a local Ray cluster of two nodes (a head and a worker as two
  processes, node IPs 127.0.0.1 and 127.0.0.2: launchers.services.RayCluster), one rank
  on each, as on two machines (mixer.ray_cpu). Run by hand, `MPO_RAY_TESTS=1` with the `ray`
  extra installed: it adds Ray's install and a two-node cluster to a CI run already near its
  30-minute goal, for a path the GPU deployments take (docs/deployment.md).
"""

import os

import pytest
import yaml

from tests.completions import completion_body
from tests.server_process import ServerProcess

PROMPTS = [[1, 60, 70, 80], [1, 200, 13, 57, 91, 4]]
REQUESTS = [
    ("test-mix", None),
    ("test-mix", {"alpha": 0.8, "beta": 0.2}),
    ("test-mix", {"alpha": 0.0, "beta": 1.0}),
    ("alpha", None),
    ("ref", None),
]


RAY = pytest.param(
    "ray",
    marks=pytest.mark.skipif(not os.environ.get("MPO_RAY_TESTS"), reason="by hand: MPO_RAY_TESTS=1, `ray` extra"),
)


@pytest.fixture(scope="module", params=["mp", RAY])
def tp2_server(request, test_manifest, tmp_path_factory):
    backend = request.param
    spec = yaml.safe_load(test_manifest.read_text())
    spec |= {"tensor_parallel_size": 2, "distributed_executor_backend": backend}
    manifest = test_manifest.with_name(f"manifest-tp2-{backend}.yaml")
    manifest.write_text(yaml.safe_dump(spec))
    data = tmp_path_factory.mktemp(f"tp2-{backend}")
    # Two ranks on two cores, whatever this machine has (the binding is what the server would pick).
    env = {"VLLM_CPU_OMP_THREADS_BIND": "0|1"}
    if backend == "mp":
        with ServerProcess(manifest, data, data / "server.log", env=env) as process:
            yield process
        return
    from launchers.services import RayCluster

    cluster = RayCluster()
    try:
        with ServerProcess(manifest, data, data / "server.log", env=env | {"RAY_ADDRESS": cluster.address}) as process:
            yield process
            process.stop()
    finally:
        cluster.stop()


def served(url: str, model: str, weights: dict | None, prompt: list[int]) -> dict:
    import httpx

    extra = {"mixture": {"weights": weights}} if weights else {}
    body = completion_body(prompt, model=model, max_tokens=16, logprobs=5, **extra)
    response = httpx.post(f"{url}/v1/completions", json=body, timeout=120)
    assert response.status_code == 200, response.text
    return response.json()["choices"][0]["logprobs"]


@pytest.mark.parametrize("model,weights", REQUESTS)
@pytest.mark.parametrize("prompt", PROMPTS)
def test_tensor_parallel_mixture_serves_what_one_process_serves(server, tp2_server, model, weights, prompt):
    one, two = served(server.url, model, weights, prompt), served(tp2_server.url, model, weights, prompt)
    assert two["tokens"] == one["tokens"]
    assert two["token_logprobs"] == pytest.approx(one["token_logprobs"], abs=1e-4)
    for top_one, top_two in zip(one["top_logprobs"], two["top_logprobs"], strict=True):
        assert top_two.keys() == top_one.keys()
        assert list(top_two.values()) == pytest.approx(list(top_one.values()), abs=1e-4)
