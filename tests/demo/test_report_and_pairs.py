"""Pure logic of the demo builds: the report's statistics, degenerate answers, the SmolLM2
demo's prompt splits, preference pairs and margins."""

import pytest

from demo.report import format_report, summarise_answers
from demo.rewards import OBJECTIVES, is_degenerate
from demo.smollm2.build import ObjectiveSetup, margin_failures, preference_pairs
from demo.smollm2.lora_dpo import LoraDpoConfig
from demo.smollm2.prompts import prompt_splits
from demo.smollm2.sampling import Answer


def test_degenerate_answers():
    assert is_degenerate("") and is_degenerate("Coffee.") and is_degenerate("Go home")
    assert not is_degenerate("Coffee is lovely.")
    assert is_degenerate("I like it a lot. I like it a lot. I like it a lot.")
    assert not is_degenerate("I like it, and I like you, and I like the way you like it.")


def test_summary_counts_lengths_and_non_answers():
    row = summarise_answers(["What a wonderful day it is", "", "Bad.", "one two three four"], OBJECTIVES)
    assert row["mean_words"] == pytest.approx((6 + 0 + 1 + 4) / 4)
    assert row["share_empty"] == 0.25 and row["share_degenerate"] == 0.5 and row["share_min_words"] == 0.5
    assert row["scores"]["concise"]["mean"] == pytest.approx(-11 / 4)
    assert row["scores"]["positive"]["mean"] > 0
    table = format_report({"ref": row})
    assert table.splitlines()[0].split()[:3] == ["model", "positive", "concise"] and "ref" in table


def test_prompt_splits_are_disjoint_by_topic_and_reproducible():
    splits = prompt_splits(0)
    assert splits == prompt_splits(0) and splits != prompt_splits(1)
    assert {k: len(v) for k, v in splits.items()} == {"dpo": 972, "fit": 240, "eval": 408}
    topic_sets = {}
    for name, prompts in splits.items():
        assert len(set(prompts)) == len(prompts)
        topic_sets[name] = {p for p in prompts if p.startswith("Tell me about ")}
    assert not (topic_sets["dpo"] & topic_sets["eval"]) and not (topic_sets["fit"] & topic_sets["eval"])


def answer(ended: bool = True) -> Answer:
    return Answer([1], [2], ended, -1.0)


def test_pairs_prefer_real_answers_by_a_clear_gap():
    group = [answer(), answer(ended=False), answer(), answer()]
    texts = ["A short and sweet answer.", "a much longer answer that was cut off before it could end", "Yes.", "hm hm"]
    setup = ObjectiveSetup(min_gap=3, chosen_must_end=True, dpo=LoraDpoConfig())
    pairs = preference_pairs([group], [texts], OBJECTIVES["concise"], setup)
    # "Yes." and "hm hm" are shorter but no answers; the cut-off one cannot be 'shorter'.
    assert pairs == [(group[0], group[1])]
    # Without the end rule a cut-off answer may be chosen, over any answer with a lower score.
    no_end_rule = ObjectiveSetup(min_gap=0, chosen_must_end=False, dpo=LoraDpoConfig())
    texts[0] = "A short and sweet answer that ended after many many more words than the other one."
    assert preference_pairs([group], [texts], OBJECTIVES["concise"], no_end_rule) == [(group[1], group[0])]
    # An answer shorter than min_chosen_words is never chosen, however much shorter it is.
    texts[0] = "A short answer."
    assert preference_pairs([group], [texts], OBJECTIVES["concise"], setup) == [(group[0], group[1])]
    # ... and with it, a non-answer loses to every real answer, ended or not, whatever the gap.
    at_least_four = ObjectiveSetup(min_gap=3, chosen_must_end=True, dpo=LoraDpoConfig(), min_chosen_words=4)
    pairs = preference_pairs([group], [texts], OBJECTIVES["concise"], at_least_four)
    assert pairs == [(group[1], group[0]), (group[1], group[2]), (group[1], group[3])]


def row(positive: float, words: float, answering: float, plain: float = 60.0) -> dict:
    scores = {"positive": {"mean": positive}, "plain": {"mean": plain}}
    return {"scores": scores, "mean_words": words, "share_min_words": answering}


def test_margins():
    good = {
        "ref": row(0.5, 100, 1.0),
        "positive": row(0.66, 110, 0.99),
        "concise": row(0.4, 69, 0.96),
        "plain": row(0.5, 90, 0.97, plain=68.5),
    }
    assert margin_failures(good) == []
    bad = {
        "ref": row(0.5, 100, 1.0),
        "positive": row(0.6, 110, 0.9),
        "concise": row(0.4, 71, 0.99),
        "plain": row(0.5, 90, 0.99, plain=67.0),
    }
    failures = margin_failures(bad)
    assert len(failures) == 4
    assert "sentiment by 0.100" in failures[0] and "0.71x" in failures[1] and "reading ease by 7.0" in failures[2]
    assert "positive: 90%" in failures[3]
