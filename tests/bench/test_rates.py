"""The benchmark's rates cannot come out negative or absurd from one jittery timing."""

import pytest

from bench.rates import SPREAD_LIMIT, decode_rates, figure, format_figure, seconds_per_step


def test_slope_of_exact_timings():
    # 0.5 s of set-up, then 0.1 s a step: batch 8 decodes 80 tokens/s.
    lengths = [8, 24, 40]
    times = [0.5 + 0.1 * n for n in lengths]
    assert seconds_per_step(lengths, times) == pytest.approx(0.1)
    assert decode_rates(8, lengths, [times]) == pytest.approx([80.0])


def test_a_jittery_first_timing_moves_the_slope_a_little():
    """Two-point differences blew up here; a line through three lengths barely moves."""
    lengths = [8, 24, 40]
    times = [0.5 + 0.1 * n for n in lengths]
    times[0] += 0.3  # the shortest run was slowed down
    rate = decode_rates(8, lengths, [times])[0]
    assert 80 < rate < 80 / (1 - 0.3 / 3.2) + 1e-9  # slower steps look faster, but bounded


def test_time_that_does_not_grow_is_flagged_not_reported_as_a_rate():
    rates = decode_rates(8, [8, 24, 40], [[2.0, 1.5, 1.0], [0.5 + 0.1 * n for n in [8, 24, 40]]])
    assert rates[0] == 0.0
    assert not figure(rates).reliable
    assert format_figure(figure(rates)).endswith("?")


def test_spread_decides_reliability():
    narrow = figure([100.0, 102.0, 104.0])
    assert narrow.median == 102.0 and narrow.spread == pytest.approx(4 / 102)
    assert narrow.reliable and format_figure(narrow) == "102.0 ±2%"
    wide = figure([100.0, 100.0 * (1 + 2 * SPREAD_LIMIT)])
    assert not wide.reliable


def test_need_two_lengths():
    with pytest.raises(ValueError):
        seconds_per_step([8, 8], [1.0, 1.1])
