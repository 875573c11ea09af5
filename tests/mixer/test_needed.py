"""Which components a request needs and how a step is planned from its rows (pure logic; the
engine-level checks against a transformers loop are tests/server/test_component_skipping.py)."""

from types import SimpleNamespace

import pytest
import torch
from vllm import SamplingParams
from vllm.v1.sample.logits_processor import BatchUpdate, MoveDirectionality

from mixer.needed import FORCE_ARG, RECORD_ARG, WEIGHTS_ARG, cache_salt, needed_components
from mixer.processor import MixtureLogitsProcessor
from mixer.step_state import STEP

COMPONENTS = 3  # ref, alpha, beta


def test_a_request_needs_the_components_it_weights():
    assert needed_components({WEIGHTS_ARG: [0.0, 0.5, 0.5]}, COMPONENTS) == (1, 2)
    assert needed_components({WEIGHTS_ARG: [0.0, 1.0, 0.0]}, COMPONENTS) == (1,)
    assert needed_components({WEIGHTS_ARG: [1.0, 0.0, 0.0]}, COMPONENTS) == (0,)


def test_recording_and_default_requests_need_everything():
    everything = (0, 1, 2)
    assert needed_components({WEIGHTS_ARG: [1.0, 0.0, 0.0], RECORD_ARG: "k"}, COMPONENTS) == everything
    assert needed_components({WEIGHTS_ARG: [1.0, 0, 0], RECORD_ARG: "k", FORCE_ARG: [5]}, COMPONENTS) == everything
    assert needed_components(None, COMPONENTS) == everything  # follows the live defaults
    assert needed_components({}, COMPONENTS) == everything


def test_salts_differ_by_needed_set_and_full_sets_are_unsalted():
    assert cache_salt((1, 2), COMPONENTS) != cache_salt((1,), COMPONENTS)
    assert cache_salt((2, 1), COMPONENTS) == cache_salt((1, 2), COMPONENTS)
    assert cache_salt((0, 1, 2), COMPONENTS) is None


def params(weights: list[float] | None = None, record: str | None = None) -> SamplingParams:
    extra = {}
    if weights is not None:
        extra[WEIGHTS_ARG] = weights
    if record is not None:
        extra[RECORD_ARG] = record
    return SamplingParams(extra_args=extra or None)


@pytest.fixture
def processor():
    config = SimpleNamespace(
        model_config=SimpleNamespace(hf_config=SimpleNamespace(mpo_mixture={"components": [{}] * COMPONENTS}))
    )
    yield MixtureLogitsProcessor(config, torch.device("cpu"), False)  # type: ignore[arg-type]
    STEP.active = STEP.row_weights = STEP.default_rows = None


def update(size: int, added=(), removed=(), moved=()) -> BatchUpdate:
    return BatchUpdate(batch_size=size, added=list(added), removed=list(removed), moved=list(moved))


def test_a_step_runs_the_union_of_its_rows_needs(processor):
    processor.update_state(update(2, added=[(0, params([0, 1, 0]), None, []), (1, params([0, 0, 2]), None, [])]))
    assert STEP.active == [1, 2]
    assert STEP.row_weights.tolist() == [[0, 1, 0], [0, 0, 1]]  # normalised
    assert STEP.default_rows.tolist() == [False, False]

    processor.update_state(update(1, removed=[1]))
    assert STEP.active == [1]
    assert STEP.row_weights.tolist() == [[0, 1, 0]]

    processor.update_state(None)  # no change: the plan stands
    assert STEP.active == [1]


def test_moves_keep_rows_and_weights_together(processor):
    processor.update_state(update(2, added=[(0, params([1, 0, 0]), None, []), (1, params([0, 0.5, 0.5]), None, [])]))
    processor.update_state(update(2, moved=[(0, 1, MoveDirectionality.SWAP)]))
    assert STEP.row_weights.tolist() == [[0, 0.5, 0.5], [1, 0, 0]]
    assert STEP.active is None  # all three components: no subset


def test_default_and_recording_rows_run_everything(processor):
    processor.update_state(update(2, added=[(0, params([0, 1, 0]), None, []), (1, params(None), None, [])]))
    assert STEP.active is None
    assert STEP.default_rows.tolist() == [False, True]

    processor.update_state(update(2, added=[(1, params([1, 0, 0], record="k"), None, [])]))
    assert STEP.active is None and STEP.default_rows.tolist() == [False, False]


def test_an_empty_batch_leaves_no_plan(processor):
    processor.update_state(update(1, added=[(0, params([0, 1, 0]), None, [])]))
    processor.update_state(update(0, removed=[0]))
    assert STEP.active is None and STEP.row_weights is None
