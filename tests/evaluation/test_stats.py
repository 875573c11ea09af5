"""Win rates, intervals and the Min on hand-made rewards."""

import math

import pytest

from evaluation.stats import (
    censor_cut,
    mean_interval,
    min_over_objectives,
    outcome,
    pareto_front,
    reward_summary,
    win_rate,
    win_rate_difference,
)
from evaluation.summary import summarise_candidates


def test_mean_interval_is_the_normal_95_percent_interval():
    stats = mean_interval([1.0, 2.0, 3.0, 4.0])
    assert stats["mean"] == 2.5 and stats["n"] == 4
    half = 1.959963984540054 * math.sqrt(5 / 3 / 4)
    assert stats["low"] == pytest.approx(2.5 - half) and stats["high"] == pytest.approx(2.5 + half)
    assert mean_interval([7.0]) == {"mean": 7.0, "low": 7.0, "high": 7.0, "n": 1}
    with pytest.raises(ValueError):
        mean_interval([])


def test_ties_count_half_in_either_direction():
    assert outcome(1.0, 1.0, "higher") == outcome(1.0, 1.0, "lower") == 0.5
    assert outcome(2.0, 1.0, "higher") == 1.0 and outcome(2.0, 1.0, "lower") == 0.0
    assert outcome(-3.0, -1.0, "lower") == 1.0


def test_win_rate_pairs_same_prompt_and_sample():
    candidate = [[1.0], [2.0], [3.0], [0.0]]
    reference = [[0.0], [2.0], [4.0], [-1.0]]
    # win, tie, loss, win: (1 + 0.5 + 0 + 1) / 4
    assert win_rate(candidate, reference, "higher")["mean"] == pytest.approx(0.625)
    assert win_rate(candidate, reference, "lower")["mean"] == pytest.approx(0.375)
    assert win_rate(reference, reference, "higher") == {"mean": 0.5, "low": 0.5, "high": 0.5, "n": 4}


def test_win_rate_interval_is_over_prompts_and_clipped():
    # two samples per prompt: each prompt's outcomes are averaged first (n counts prompts)
    rate = win_rate([[1, 0], [1, 1], [0, 0]], [[0, 1], [0, 0], [1, 1]], "higher")
    assert rate["n"] == 3 and rate["mean"] == pytest.approx((0.5 + 1 + 0) / 3)
    assert 0.0 <= rate["low"] < rate["mean"] < rate["high"] <= 1.0
    always = win_rate([[1.0], [1.0]], [[0.0], [0.0]], "higher")
    assert always["mean"] == always["high"] == 1.0
    with pytest.raises(ValueError, match="same prompts"):
        win_rate([[1.0]], [[1.0], [2.0]], "higher")


def test_reward_summary_averages_samples_within_a_prompt():
    summary = reward_summary([[1.0, 3.0], [4.0, 4.0]])
    assert summary["mean"] == 3.0 and summary["n"] == 2


def test_min_is_the_worst_objective():
    assert min_over_objectives({"a": {"mean": 0.7}, "b": {"mean": 0.4}}) == {"objective": "b", "win_rate": 0.4}
    assert min_over_objectives({"only": {"mean": 0.55}}) == {"objective": "only", "win_rate": 0.55}


def test_summary_with_one_objective_and_unequal_directions():
    rewards = {
        "ref": {"short": [[10.0], [20.0]], "happy": [[0.0], [0.0]]},
        "terse": {"short": [[5.0], [25.0]], "happy": [[-1.0], [1.0]]},
    }
    summary = summarise_candidates(rewards, "ref", {"short": "lower", "happy": "higher"})
    assert summary["ref"]["min"]["win_rate"] == 0.5
    assert summary["terse"]["objectives"]["short"]["win_rate"]["mean"] == 0.5  # shorter once, longer once
    assert summary["terse"]["objectives"]["short"]["reward"]["mean"] == 15.0
    one = summarise_candidates({k: {"short": v["short"]} for k, v in rewards.items()}, "ref", {"short": "lower"})
    assert one["terse"]["min"] == {"objective": "short", "win_rate": 0.5}
    with pytest.raises(ValueError, match="reference"):
        summarise_candidates(rewards, "missing", {"short": "lower", "happy": "higher"})


def test_a_paired_win_rate_difference_is_taken_answer_by_answer_against_the_same_reference_answers():
    # Two prompts of two samples; lower is better. Outcomes against ref: a (1, 0 | 1, 1), b (1, 1 | 0, 1/2).
    reference = [[10.0, 10.0], [10.0, 8.0]]
    a, b = [[5.0, 12.0], [9.0, 7.0]], [[5.0, 9.0], [11.0, 8.0]]
    difference = win_rate_difference(a, b, reference, "lower")
    assert difference["mean"] == pytest.approx(((0 - 1) / 2 + (1 + 0.5) / 2) / 2)  # prompt means -1/2, +3/4
    assert difference["low"] < difference["mean"] < difference["high"] and difference["n"] == 2
    rewards = {"ref": {"x": reference}, "a": {"x": a}, "b": {"x": b}}
    summary = summarise_candidates(rewards, "ref", {"x": "lower"}, against="b")
    assert summary["a"]["objectives"]["x"]["win_rate_minus_against"] == difference
    assert summary["b"]["objectives"]["x"]["win_rate_minus_against"]["mean"] == 0.0
    # One objective: the Min's difference is the win rate's, its interval the paired bootstrap's.
    assert summary["a"]["min_minus_against"]["mean"] == pytest.approx(difference["mean"])
    assert summary["b"]["min_minus_against"] == {"mean": 0.0, "low": 0.0, "high": 0.0, "n": 2}
    assert "win_rate_minus_against" not in summarise_candidates(rewards, "ref", {"x": "lower"})["a"]["objectives"]["x"]
    with pytest.raises(ValueError, match="compared with 'c'"):
        summarise_candidates(rewards, "ref", {"x": "lower"}, against="c")


def test_on_a_length_judge_two_cut_answers_tie_and_a_cut_one_loses():
    """Words of an answer cut at the token limit measure words per token: a cut answer counts as
    longer than any that ended, two cut answers tie; means keep the words counted."""
    reference = [[-90.0], [-80.0], [-40.0], [-50.0]]  # minus words
    terse = [[-60.0], [-70.0], [-30.0], [-45.0]]  # fewer words on every prompt
    cut = {"ref": [[True], [True], [False], [False]], "terse": [[True], [False], [True], [False]]}
    # prompt 0: both cut, a tie; 1: only ref cut, terse wins; 2: only terse cut, it loses; 3: words decide
    assert censor_cut(terse, cut["terse"], "higher") == [[-math.inf], [-70.0], [-math.inf], [-45.0]]
    assert censor_cut([[3.0]], [[True]], "lower") == [[math.inf]]
    rewards = {"ref": {"concise": reference, "happy": reference}, "terse": {"concise": terse, "happy": terse}}
    directions = {"concise": "higher", "happy": "higher"}
    summary = summarise_candidates(rewards, "ref", directions, cut=cut, lengths={"concise"})["terse"]
    assert summary["objectives"]["concise"]["win_rate"]["mean"] == pytest.approx((0.5 + 1 + 0 + 1) / 4)
    assert summary["objectives"]["happy"]["win_rate"]["mean"] == 1.0  # not a length judge: words decide
    assert summary["objectives"]["concise"]["reward"]["mean"] == pytest.approx(-51.25)
    assert summary["min"] == {"objective": "concise", "win_rate": pytest.approx(0.625)}
    with pytest.raises(ValueError, match="cut flag"):
        censor_cut(terse, [[True]], "higher")


def test_pareto_front_respects_directions():
    points = {"a": [1.0, 5.0], "b": [2.0, 4.0], "c": [0.5, 4.5], "d": [2.0, 4.0]}
    assert pareto_front(points, ["higher", "higher"]) == ["a", "b", "d"]  # c is dominated by a
    assert pareto_front(points, ["lower", "lower"]) == ["b", "c", "d"]
