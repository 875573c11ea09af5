"""The SmolLM2 demo's whole build path at smoke scale (a few prompts, two DPO steps): real
SmolLM2-135M-Instruct, real LoRA adapters, deterministic, and served by `mpo-serve` on one
shared base (nothing merged), equal to peft with the adapters unmerged. The full build's
margins are checked by the build itself."""

import json
import re
import subprocess
import sys
from pathlib import Path

import httpx
import openai
import yaml
from transformers import AutoTokenizer

from demo.smollm2.build import ANSWERS, STAMP, build, is_built, smoke_config
from tests.completions import completion_body, token_ids
from tests.oracle import MixtureOracle
from tests.readme import commands, python_example
from tests.server_process import ADMIN_TOKEN, ServerProcess, admin_client

POLICIES = ("positive", "concise", "plain")


def test_build_writes_reference_adapters_manifest_prompts_and_report(smollm2_smoke_demo):
    folder = smollm2_smoke_demo.parent
    manifest = yaml.safe_load(smollm2_smoke_demo.read_text())
    assert manifest["reference"] == {"name": "ref", "path": "ref"}
    assert manifest["policies"] == [{"name": n, "adapter": f"adapters/{n}"} for n in POLICIES]
    assert manifest["objectives"] == {"positive": "sentiment", "concise": "concise", "plain": "readability"}
    for name in POLICIES:
        config = json.loads((folder / "adapters" / name / "adapter_config.json").read_text())
        assert config["peft_type"] == "LORA" and config["base_model_name_or_path"] == str(folder / "ref")
    stamp = json.loads((folder / STAMP).read_text())
    assert set(stamp["report"]) == {"ref", *POLICIES}
    for row in stamp["report"].values():
        assert set(row["scores"]) == set(POLICIES) and row["scores"]["positive"]["n"] == 4
    assert set(stamp["timings"]) == {"sampling", "frozen_layers", *(f"dpo:{n}" for n in POLICIES)}
    assert all(t["cpu_s"] > 0 and t["wall_s"] > 0 for t in stamp["timings"].values())
    samples = [json.loads(line) for line in (folder / "reference_samples.jsonl").read_text().splitlines()]
    assert len(samples) == 6 * 3 and set(samples[0]["scores"]) == set(POLICIES)  # 6 prompts, 3 samples each
    for split in ("fit", "eval"):
        first = json.loads((folder / f"{split}_prompts.jsonl").read_text().splitlines()[0])
        assert first["messages"][0]["role"] == "user" and first["messages"][0]["content"]
    answers = [json.loads(line) for line in (folder / "eval_answers.jsonl").read_text().splitlines()]
    assert len(answers) == 4 * 4 and {a["model"] for a in answers} == {"ref", *POLICIES}


def test_build_is_cached_and_deterministic(smollm2_smoke_demo, tmp_path):
    assert is_built(smollm2_smoke_demo.parent, smoke_config())
    first = json.loads((smollm2_smoke_demo.parent / STAMP).read_text())
    again = json.loads((build(tmp_path / "again", smoke_config()).parent / STAMP).read_text())
    assert again["report"] == first["report"] and again["dpo_losses"] == first["dpo_losses"]


def test_smollm2_smoke_demo_serves_its_adapters_through_the_openai_client(smollm2_smoke_demo, tmp_path):
    """On the shared base: its adapters change only the top layers (the shared base runs the
    others once), and the default mixture's greedy tokens equal the loop's. An eval that names
    no length or temperature samples as the manifest's answers say."""
    with ServerProcess(smollm2_smoke_demo, tmp_path, tmp_path / "server.log") as server:
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
        assert [m.id for m in client.models.list()][:5] == ["mpo-demo", "ref", *POLICIES]
        for model in ("mpo-demo", *POLICIES):
            reply = client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": "Tell me about tea."}], max_tokens=8, seed=1
            )
            assert reply.choices[0].message.content.strip()
        prompt = AutoTokenizer.from_pretrained(smollm2_smoke_demo.parent / "ref")("Tell me about tea.")["input_ids"]
        body = completion_body(prompt, model="mpo-demo", max_tokens=6)
        logprobs = httpx.post(f"{server.url}/v1/completions", json=body, timeout=120).json()["choices"][0]["logprobs"]
        assert "served on one shared base" in server.log.read_text()
        with admin_client(server) as admin:
            options = {"candidates": ["ref"], "objectives": {"short": "concise"}}
            started = admin.post("/admin/eval", json={"items": [{"prompt": "Tell me about tea."}], "options": options})
            assert started.status_code == 202, started.text
            params = admin.get(f"/admin/eval/{started.json()['id']}").json()["params"]
            assert {k: params[k] for k in ANSWERS} == ANSWERS
            admin.delete(f"/admin/eval/{started.json()['id']}")
    oracle = MixtureOracle(smollm2_smoke_demo)
    oracle.check_greedy(
        prompt, oracle.vector(dict.fromkeys(POLICIES, 1 / 3)), token_ids(logprobs), logprobs["token_logprobs"]
    )
    assert not (tmp_path / "merged").exists()  # nothing merged at start


# The README's commands run against the demo on localhost:8000 with its cache folder; here on
# the smoke demo's server, smaller: fewer prompts and pairs, shorter answers (the README says
# what each takes on the full demo).
README_DEMO = "~/.cache/mpo-serve/demos/smollm2"
SMALLER = {
    "head -32": "head -3",
    "head -96": "head -2",
    "--method judged": "--method judged --max-tokens 24",
    "--seed 0 ": "--seed 0 --max-tokens 24 ",
    "$D/pairs_fit.jsonl": "pairs16.jsonl",
}


def readme_job_commands() -> list[str]:
    """The README's fit and eval commands, with the lines that prepare their files."""
    return [c for c in commands() if c.startswith(("D=", "MPO_ADMIN_TOKEN=..."))]


def as_run_here(command: str, demo: Path, url: str) -> str:
    """The command for this server and demo, in a shell of its own (where the README's user
    keeps one shell, hence `D` set again)."""
    command = f"D={demo}; " + command.replace(README_DEMO, str(demo)).replace("http://localhost:8000", url)
    command = command.replace("MPO_ADMIN_TOKEN=...", f"MPO_ADMIN_TOKEN={ADMIN_TOKEN}")
    command = command.replace(".venv/bin/", f"{Path(sys.executable).parent}/")
    for long, short in SMALLER.items():
        command = command.replace(long, short)
    return command


def test_the_readmes_example_and_job_commands_run_on_the_demo(smollm2_smoke_demo, tmp_path):
    """The README's openai example prints its four answers, and each of its fit and eval
    commands succeeds (the fits store weight sets, the eval prints its table)."""
    pairs = (smollm2_smoke_demo.parent / "pairs_fit.jsonl").read_text().splitlines()[:16]
    (tmp_path / "pairs16.jsonl").write_text("\n".join(pairs) + "\n")
    with ServerProcess(smollm2_smoke_demo, tmp_path, tmp_path / "server.log") as server:
        example = python_example().replace("http://localhost:8000/v1", f"{server.url}/v1")
        printed = subprocess.run([sys.executable, "-c", example], capture_output=True, text=True, timeout=600)
        assert printed.returncode == 0, printed.stderr[-2000:]
        assert len([line for line in printed.stdout.splitlines() if line.strip()]) >= 4, printed.stdout
        ran = readme_job_commands()
        assert sum(" fit " in c for c in ran) == 3 and sum(" eval " in c for c in ran) == 1, ran
        for command in ran:
            shell = as_run_here(command, smollm2_smoke_demo.parent, server.url)
            done = subprocess.run(["bash", "-c", shell], cwd=tmp_path, capture_output=True, text=True, timeout=900)
            assert done.returncode == 0, f"{shell}\n{done.stdout[-1500:]}\n{done.stderr[-1500:]}"
            if " fit " in command:
                assert re.search(r'"result_weight_set": \d+', done.stdout), done.stdout[-1500:]
            if " eval " in command:
                assert "uniform" in done.stdout and "Min" in done.stdout, done.stdout[-1500:]
        with admin_client(server) as admin:
            sources = [s["source"] for s in admin.get("/admin/weights/history").json()["data"]]
        assert sources.count("fit") == 3
