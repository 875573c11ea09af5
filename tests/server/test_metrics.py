"""/metrics has vLLM's own metrics and the mixture's, and load moves them."""

import threading

import httpx

from tests.scrape import scrape, scrape_until, total


def test_vllm_and_mpo_metrics_move_with_requests(http, admin):
    before = scrape(http)
    for name in ("vllm:time_to_first_token_seconds_count", "vllm:generation_tokens_total", "mpo_default_weight"):
        assert any(n == name for n, _ in before), name
    bodies = [
        {"model": "alpha", "prompt": "Life is", "max_tokens": 4},
        {"model": "test-mix", "prompt": "Life is", "max_tokens": 4},
        {"model": "test-mix", "prompt": "Life is", "max_tokens": 4, "mixture": {"weights": {"beta": 1}}},
    ]
    generated = 0
    for body in bodies:
        response = http.post("/v1/completions", json=body)
        assert response.status_code == 200
        generated += response.json()["usage"]["completion_tokens"]
    # vLLM records a step's stats after it hands the step's outputs to the requests, so the
    # last step's counts may reach /metrics a moment after the response.
    wanted = total(before, "vllm:generation_tokens_total") + generated
    after = scrape_until(http, lambda s: total(s, "vllm:generation_tokens_total") >= wanted)
    assert total(after, "vllm:time_to_first_token_seconds_count") >= total(
        before, "vllm:time_to_first_token_seconds_count"
    ) + len(bodies)
    for kind in ("component", "mixture_default", "explicit_weights"):
        assert total(after, "mpo_requests_total", kind=kind) == total(before, "mpo_requests_total", kind=kind) + 1
    assert total(after, "mpo_default_weight", policy="alpha") == 0.5
    active = admin.get("/admin/weights/history").json()["data"]
    assert total(after, "mpo_active_weight_set") == next(s["id"] for s in active if s["active"])


def test_component_weight_bytes_and_the_serving_mode(http, lora_server, admin):
    merged = scrape(http)  # the tests' full checkpoints: each component a whole model
    sizes = {c["name"]: c["weight_bytes"] for c in admin.get("/admin/mixture").json()["components"]}
    for name, size in sizes.items():
        assert total(merged, "mpo_component_weight_bytes", component=name, mode="merged") == size
    with httpx.Client(base_url=lora_server.url) as client:
        shared = scrape(client)
    assert total(shared, "mpo_component_weight_bytes", component="ref", mode="shared") == sizes["ref"]
    assert 0 < total(shared, "mpo_component_weight_bytes", component="alpha", mode="shared") < sizes["ref"] / 10
    assert total(shared, "mpo_component_weight_bytes", mode="merged") == 0


def test_a_scrape_during_load_sees_it(http, server):
    """A long streaming request is running while we scrape: the running gauges show it."""
    started = threading.Event()

    def stream() -> None:
        body = {"model": "test-mix", "prompt": "Life is", "max_tokens": 400, "ignore_eos": True, "stream": True}
        with httpx.stream("POST", f"{server.url}/v1/completions", json=body, timeout=120) as response:
            for _ in response.iter_lines():
                started.set()

    worker = threading.Thread(target=stream)
    worker.start()
    assert started.wait(60)
    during = scrape(http)
    worker.join()
    assert total(during, "mpo_requests_unfinished") >= 1
    assert total(during, "vllm:num_requests_running") >= 1
    after = scrape(http)
    assert total(after, "vllm:num_requests_running") == 0
