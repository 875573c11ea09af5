"""/openapi.json documents what every route answers: a schema for each JSON response (no
server needed: the app's document is built without its engine), and a client generated from it
by openapi-python-client drives a fit on a real server and reads its weights."""

import importlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from client.jobs import ENDED
from mixer.manifest import load_manifest
from server.api import schemas
from server.api.app import create_app
from server.settings import Settings
from tests.server_process import ADMIN_TOKEN

VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def document(test_manifest, tmp_path_factory) -> dict:
    settings = Settings(manifest=test_manifest, data_dir=tmp_path_factory.mktemp("openapi"))
    return create_app(settings, load_manifest(test_manifest)).openapi()


def operations(document: dict):
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", operation


def test_every_json_response_has_a_schema(document):
    undocumented = []
    for name, operation in operations(document):
        successes = {code: r for code, r in operation["responses"].items() if code.startswith("2")}
        assert successes, f"{name} documents no success"
        for code, response in successes.items():
            content = response.get("content") or {}
            assert content, f"{name} {code} documents no content"
            schema = (content.get("application/json") or {}).get("schema")
            if "application/json" in content and not (schema or {}).get("$ref"):
                undocumented.append(f"{name} {code}: {schema}")
    assert not undocumented, "\n".join(undocumented)
    assert len(list(operations(document))) >= 30


def test_the_job_routes_document_their_bodies(document):
    for route, batch in (("/admin/fit", "FitBatch"), ("/admin/eval", "EvalBatch")):
        body = document["paths"][route]["post"]["requestBody"]
        assert body["content"]["application/json"]["schema"] == {"$ref": f"#/components/schemas/{batch}"}
        assert "multipart/form-data" in body["description"] and body["required"]
        assert batch in document["components"]["schemas"]


def generated_client(spec: dict, folder: Path):
    """The package openapi-python-client generates from `spec`, imported."""
    (folder / "openapi.json").write_text(json.dumps(spec))
    env = os.environ | {"PATH": f"{VENV_BIN}:{os.environ['PATH']}"}  # it formats its output with ruff
    command = [str(VENV_BIN / "openapi-python-client"), "generate", "--path", "openapi.json", "--output-path", "out"]
    subprocess.run(command, cwd=folder, env=env, check=True, capture_output=True)
    sys.path.insert(0, str(folder / "out"))
    try:
        return importlib.import_module("mpo_serve_client")
    finally:
        sys.path.remove(str(folder / "out"))


def test_a_generated_client_runs_a_fit_and_reads_its_weights(checkpoint_server, tmp_path):
    spec = httpx.get(f"{checkpoint_server.url}/openapi.json").json()
    package = generated_client(spec, tmp_path)
    fit_post = importlib.import_module("mpo_serve_client.api.admin.start_fit_admin_fit_post")
    fit_get = importlib.import_module("mpo_serve_client.api.admin.fit_status_admin_fit_job_id_get")
    history = importlib.import_module("mpo_serve_client.api.admin.weights_history_admin_weights_history_get")
    models = importlib.import_module("mpo_serve_client.models")

    client = package.AuthenticatedClient(
        base_url=checkpoint_server.url, token=ADMIN_TOKEN, raise_on_unexpected_status=True
    )
    body = {
        "items": [{"prompt": "Life is"}, {"prompt": "The sea"}],
        "options": {"samples_per_prompt": 4, "max_tokens": 4, "iterations": 50, "batch_size": 2, "seed": 3},
    }
    started = fit_post.sync(client=client, body=models.FitBatch.from_dict(body))
    assert isinstance(started, models.FitStatus) and started.phase not in ENDED
    while (status := fit_get.sync(started.id, client=client)).phase not in ENDED:
        time.sleep(0.2)
    assert status.phase == "succeeded", status.error
    weights = status.weights.to_dict()
    assert set(weights) == {"alpha", "beta"} and abs(sum(weights.values()) - 1) < 1e-6
    stored = {s.id: s for s in history.sync(client=client).data}
    assert stored[status.result_weight_set].weights.to_dict() == weights
    assert stored[status.result_weight_set].source == "fit"


def test_openai_answers_are_what_the_document_says(checkpoint_server):
    """The OpenAI routes build their bodies by hand (no response_model): each is checked here."""
    with httpx.Client(base_url=checkpoint_server.url, timeout=120) as http:
        chat = {"model": "test-mix", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3, "logprobs": True}
        schemas.ChatCompletion.model_validate(http.post("/v1/chat/completions", json=chat).json())
        text = {"model": "alpha", "prompt": "Life is", "max_tokens": 3, "logprobs": 2}
        schemas.Completion.model_validate(http.post("/v1/completions", json=text).json())
        response = {"model": "test-mix", "input": "Life is", "max_output_tokens": 3}
        schemas.ResponseObject.model_validate(http.post("/v1/responses", json=response).json())
