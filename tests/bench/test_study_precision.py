"""bench.study_precision on the smoke study (tests/conftest.py): it answers the three
candidates' second samples and new prompts, its "study" row is the study table's paired
difference, and answers it kept are not asked for again."""

import json

import pytest

import study.run
from bench.study_precision import answer_more, intervals
from study.table import study_rows

JUDGE_SETS = ("training", "held_out")


def test_the_precision_bench_answers_more_and_its_study_row_is_the_tables(smoke_study, monkeypatch):
    out, _ = smoke_study
    seconds = answer_more(out, 2)
    best = json.loads((out / "study.json").read_text())["best_fit"]
    for plan in ("second", "new"):
        assert sorted(p.name for p in (out / "precision" / plan).iterdir()) == sorted(
            f"{n}.jsonl" for n in ("ref", "uniform", best)
        )
    rows = intervals(out, 2, seconds)
    assert [(r["judges"], r["way"], r["answers"]) for r in rows] == [
        (judged, way, answers)
        for judged in JUDGE_SETS
        for way, answers in (("study", 3), ("second sample", 5), ("new prompts", 5), ("both", 7))
    ]
    uniform = next(r for r in study_rows(out)[1] if r["name"] == "uniform")
    for judged in JUDGE_SETS:
        alone = next(r for r in rows if r["judges"] == judged and r["way"] == "study")
        table = uniform["judges"][judged]["best_minus_this"]
        assert alone["mean"] == pytest.approx(100 * table["mean"]) and alone["low"] == pytest.approx(100 * table["low"])
    assert all(r["low"] <= r["high"] and r["half"] == (r["high"] - r["low"]) / 2 for r in rows)

    def no_server(*args, **kwargs):
        raise AssertionError("answers that are kept were asked for again")

    monkeypatch.setattr(study.run, "MpoServer", no_server)
    assert answer_more(out, 2) == seconds
