"""`mpo-serve study` end to end at smoke scale on the SmolLM2 demo's smoke build (real
servers, real DPO, real fits), then its resumption: a finished run starts no server and
answers nothing again, and a missing candidate is the only thing left to do.

The study runs on the SmolLM2 demo, not the tiny one: its baselines are retrained by the
SmolLM2 demo's LoRA DPO on the reference samples that build keeps."""

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest

import study.run
from store.weight_store import WeightStore
from study.candidates import FITS
from study.run import Study, StudyMismatch, smoke_config
from weights.solver import standardised

JUDGE_SETS = ("training", "held_out")

CANDIDATES = ["ref", "positive", "concise", "plain", "uniform", *FITS, "soup_uniform", "linear", "maxmin", "soup_best"]


@pytest.fixture(scope="module")
def finished(smoke_study):
    return smoke_study


def test_the_study_writes_every_candidate_its_costs_table_and_plot(finished):
    out, table = finished
    meta = json.loads((out / "study.json").read_text())
    assert [c["name"] for c in meta["candidates"]] == CANDIDATES and meta["best_fit"] in FITS
    for name in CANDIDATES:
        header, *rows = (out / "answers" / f"{name}.jsonl").read_text().splitlines()
        assert json.loads(header)["candidate"] == name and len(rows) == 3
        first = json.loads(rows[0])
        assert {k: set(v) for k, v in first["rewards"].items()} == dict.fromkeys(
            JUDGE_SETS, {"positive", "concise", "plain"}
        )
        assert first["finish_reason"] in ("stop", "length")
    uniform = json.loads((out / "answers" / "uniform.jsonl").read_text().splitlines()[0])["request"]
    assert uniform == {
        "model": "mpo-demo",
        "mixture": {"weights": dict.fromkeys(["positive", "concise", "plain"], 1 / 3)},
    }
    costs = json.loads((out / "costs.json").read_text())
    expected = {"sampling", "frozen_layers", "dpo:positive", "dpo:concise", "dpo:plain"}
    expected |= {"retrain:frozen_layers", "retrain:linear", "retrain:maxmin"}
    expected |= {f"fit:{f}" for f in FITS} | {"soup:soup_uniform", "soup:soup_best"}
    assert set(costs) == expected and all(c["cpu_s"] > 0 for c in costs.values())
    main, held_out = table.split("\n\n")
    assert len(main.splitlines()) == len(held_out.splitlines()) == 2 + len(CANDIDATES)
    assert (out / "study.png").read_bytes()[:4] == b"\x89PNG"
    # the table is recomputed from the saved files alone
    again = subprocess.run([sys.executable, "-m", "study.table", str(out)], capture_output=True, text=True, check=True)
    assert again.stdout.strip() == table == (out / "table.md").read_text().strip()


def test_each_fit_records_its_parameters_in_its_weight_set(finished):
    out, _ = finished
    fits = json.loads((out / "fits.json").read_text())
    store = WeightStore(out / "server" / "weights.sqlite", "mpo-demo")
    try:
        for name, (items, extra) in FITS.items():
            params = store.get(fits[name]["weight_set"]).params
            assert params["method"] == extra.get("method", "mpo")
            if items == "prompts":
                assert params["normalise"] == extra.get("normalise", "none")
                assert (params["scorers"] is None) == ("scorers" not in extra) and params["beta"] == extra.get("beta")
    finally:
        store.close()
    assert standardised(np.array([[[1.0], [3.0]]])).ravel().tolist() == [-1.0, 1.0]


def test_a_finished_study_resumes_without_answering_again(finished, smollm2_smoke_demo, monkeypatch):
    out, table = finished
    before = {p.name: p.stat().st_mtime_ns for p in (out / "answers").iterdir()}

    def no_server(*args, **kwargs):
        raise AssertionError("a finished study started a server")

    monkeypatch.setattr(study.run, "MpoServer", no_server)
    resumed = Study(smollm2_smoke_demo.parent, out, smoke_config())
    assert resumed.pending() == [] and resumed.run() == table
    assert {p.name: p.stat().st_mtime_ns for p in (out / "answers").iterdir()} == before
    other = dataclasses.replace(smoke_config(), eval_prompts=2)
    with pytest.raises(StudyMismatch, match="made with other settings"):
        Study(smollm2_smoke_demo.parent, out, other).run()
    (out / "answers" / "maxmin.jsonl").unlink()
    assert resumed.pending() == ["maxmin"]
