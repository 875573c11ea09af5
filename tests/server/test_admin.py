"""The admin API: the mixture's description, and live default-weight changes."""

import json
import threading

import httpx
from transformers import AutoTokenizer

from tests.completions import completion_body, token_ids
from tests.server_process import ADMIN_TOKEN


def test_describe_mixture(admin, test_manifest):
    body = admin.get("/admin/mixture").json()
    assert body["name"] == "test-mix"
    assert [(c["name"], c["role"]) for c in body["components"]] == [
        ("ref", "reference"),
        ("alpha", "policy"),
        ("beta", "policy"),
    ]
    assert body["components"][1]["path"] == str((test_manifest.parent / "alpha").resolve())
    assert body["default_weights"] == {"alpha": 0.5, "beta": 0.5}
    assert isinstance(body["active_weight_set"], int)
    assert body["lora_mode"] == {
        "mode": "merged",
        "reason": "component 'alpha' is a full checkpoint, not a LoRA adapter on the reference",
        "requested": "auto",
    }
    assert len({c["weight_bytes"] for c in body["components"]}) == 1  # three models of one shape


def test_describe_a_shared_base_mixture(lora_server, lora_manifest):
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    body = httpx.get(f"{lora_server.url}/admin/mixture", headers=headers).json()
    assert body["lora_mode"]["mode"] == "shared"
    ref, alpha, beta = body["components"]
    assert ref["path"] == str((lora_manifest.parent / "ref").resolve()) and "adapter" not in ref
    assert alpha["adapter"] == str((lora_manifest.parent / "alpha-lora").resolve()) and "path" not in alpha
    assert 0 < alpha["weight_bytes"] < beta["weight_bytes"] < ref["weight_bytes"] / 2  # deltas only


def test_put_weights_normalises_and_reports(admin):
    body = admin.put("/admin/weights", json={"weights": {"alpha": 3, "beta": 1}}).json()
    assert body["default_weights"] == {"alpha": 0.75, "beta": 0.25}
    assert admin.get("/admin/mixture").json()["default_weights"] == {"alpha": 0.75, "beta": 0.25}


def test_new_weights_apply_to_next_requests_while_requests_in_flight_finish(admin, server, oracle, test_manifest):
    prompt = AutoTokenizer.from_pretrained(test_manifest.parent / "ref")("The best way to")["input_ids"]
    before, after = {"alpha": 0.5, "beta": 0.5}, {"alpha": 0.1, "beta": 0.9}
    first_chunk = threading.Event()
    streamed: dict = {"ids": [], "logprobs": [], "finish": None}

    def in_flight() -> None:
        body = completion_body(prompt, max_tokens=100, stream=True)
        with httpx.stream("POST", f"{server.url}/v1/completions", json=body, timeout=120) as response:
            for line in response.iter_lines():
                if not line.startswith("data: {"):
                    continue
                choice = json.loads(line[6:])["choices"][0]
                if choice["logprobs"]:
                    streamed["ids"] += token_ids(choice["logprobs"])
                    streamed["logprobs"] += choice["logprobs"]["token_logprobs"]
                streamed["finish"] = choice["finish_reason"] or streamed["finish"]
                first_chunk.set()

    thread = threading.Thread(target=in_flight)
    thread.start()
    assert first_chunk.wait(60)
    admin.put("/admin/weights", json={"weights": after}).raise_for_status()
    thread.join(120)

    # The request in flight finished normally, entirely under the weights it started with.
    assert streamed["finish"] == "length" and len(streamed["ids"]) == 100
    oracle.check_greedy(prompt, oracle.vector(before), streamed["ids"], streamed["logprobs"])
    # The next request uses the new defaults.
    lp = admin.post("/v1/completions", json=completion_body(prompt)).json()["choices"][0]["logprobs"]
    oracle.check_greedy(prompt, oracle.vector(after), token_ids(lp), lp["token_logprobs"])
