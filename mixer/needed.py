"""Which components a request needs, so that a step runs only those (pure Python, no vLLM).

A request needs the components its weights do not zero, except that a recording request
(fit sampling and scoring: mixer.recording) reads every component's log-probs, and a request
without weights (mpo-serve never sends one) takes the engine's defaults, the manifest's
weights: both need all. The front end and the worker compute the same set from the same SamplingParams
extra_args: the worker to run the union over a step's requests, the front end to salt the
prefix cache (see cache_salt).
"""

from collections.abc import Mapping, Sequence

WEIGHTS_ARG = "mpo_weights"  # extra_args key: the request's weights over all components
RECORD_ARG = "mpo_record"  # extra_args key: a unique recording key (str)
FORCE_ARG = "mpo_force"  # extra_args key: token ids to force, in order (list[int])
RECORD_MIXTURES_ARG = "mpo_record_mixtures"  # extra_args key: weight vectors whose served log-probs to record
RECORD_TEMPERATURE_ARG = "mpo_record_temperature"  # extra_args key: the temperature they are served at (float)
RECORD_EXPANSION_ARG = "mpo_record_expansion"  # extra_args key: a weight vector to expand the served log-prob around


def needed_components(extra_args: Mapping | None, count: int) -> tuple[int, ...]:
    """Indices (reference first) of the components whose outputs the request reads."""
    extra = extra_args or {}
    weights: Sequence[float] | None = extra.get(WEIGHTS_ARG)
    if weights is None or RECORD_ARG in extra or len(weights) != count:
        return tuple(range(count))
    return tuple(i for i, w in enumerate(weights) if w != 0)


def cache_salt(needed: Sequence[int], count: int) -> str | None:
    """The prefix-cache salt of a request that needs `needed` of `count` components.

    A step writes a component's KV only when some scheduled request needs it, so a cached
    block holds valid KV exactly for the components its writer needed. vLLM reuses a block only
    between requests with the same salt: salting by the needed set means a block is reused
    only by requests needing the same components. Requests that need every component write
    every component's KV, valid for anyone; they keep vLLM's unsalted blocks. Simpler than
    tracking per-block component sets inside vLLM's block pool, at the cost of no sharing
    between requests with different sets (e.g. a policy alone and the mixture).
    """
    if len(needed) == count:
        return None
    return "mpo-components:" + ",".join(str(i) for i in sorted(needed))
