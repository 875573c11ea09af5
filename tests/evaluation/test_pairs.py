"""A pair eval's statistics (evaluation.pairs) and its table, on margins small enough to count by hand."""

import pytest

from evaluation.pairs import accuracy_difference, summarise_pairs
from evaluation.table import format_pair_table

# served[candidate][objective][prompt][pair]: two prompts, of three and one pairs.
SERVED = {
    "a": {"x": [[1.0, -1.0, 2.0], [0.5]]},
    "b": {"x": [[1.0, 1.0, 2.0], [-0.5]]},
    "c": {"x": [[0.0, 0.0, 0.0], [0.0]]},  # every margin a tie
}


def test_paired_difference_is_taken_pair_by_pair_and_a_prompts_pairs_averaged_first():
    # a - b: pair by pair (0, -1, 0) on the first prompt, (+1) on the second: prompt means -1/3, 1.
    difference = accuracy_difference(SERVED["a"]["x"], SERVED["b"]["x"])
    assert difference["mean"] == pytest.approx((-1 / 3 + 1) / 2)
    assert difference["low"] < difference["mean"] < difference["high"]
    assert accuracy_difference(SERVED["c"]["x"], SERVED["b"]["x"])["mean"] == pytest.approx(((0.5 - 1) + (0.5 - 0)) / 2)
    same = accuracy_difference(SERVED["a"]["x"], SERVED["a"]["x"])
    assert same["mean"] == same["low"] == same["high"] == 0.0


def test_summary_and_table_show_the_paired_block_only_with_a_candidate_to_compare_with():
    plain = summarise_pairs(SERVED, {name: None for name in SERVED})
    assert "accuracy_minus_against" not in plain["a"]["objectives"]["x"]
    assert plain["c"]["objectives"]["x"]["accuracy"]["mean"] == 0.5 and plain["c"]["min"]["objective"] == "x"
    paired = summarise_pairs(SERVED, {name: None for name in SERVED}, against="b")
    assert paired["b"]["objectives"]["x"]["accuracy_minus_against"]["mean"] == 0.0
    result = {
        "objectives": ["x"],
        "pairs": {"x": 4},
        "candidates": [{"name": name} | summary for name, summary in paired.items()],
    }
    assert "minus" not in format_pair_table(result)
    table = format_pair_table(result | {"against": "b"})
    block = table.split("minus b", 1)[1]
    assert "\na " in block and "\nc " in block and "\nb " not in block  # every candidate but b itself
    assert "+33.3" in block  # a minus b: prompt means -1/3 and +1, their mean
