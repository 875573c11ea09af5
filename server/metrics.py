"""Prometheus metrics: vLLM's own (the `vllm:` names its dashboards use, recorded by the
engine's stat logger in this process) and the mixture's `mpo_` ones, in one registry.

Counters that change per request are prometheus_client objects; values that are state
(unfinished requests, default weights, the active weight set, running jobs) are read when
scraped, by a collector, so they can never drift from the truth.
"""

from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

REQUESTS = Counter(
    "mpo_requests",
    "OpenAI requests admitted, by how their weights were chosen: the mixture's defaults, "
    "explicit per-request weights, a stored weight set, or one component alone.",
    ["kind"],
)
REJECTED = Counter(
    "mpo_requests_rejected",
    "OpenAI requests refused before any work, by why: overloaded (MPO_MAX_WAITING requests already wait "
    "for the engine), per_key (an API key at MPO_MAX_IN_FLIGHT_PER_KEY), shutting_down (a drain, or a dead engine).",
    ["reason"],
)
JOB_PHASES = {
    "fit": ["sampling", "scoring", "rewarding", "fitting", "storing"],
    "eval": ["generating", "scoring", "storing"],
}


class MixtureCollector(Collector):
    """State of the served mixture, read at scrape time from the app's services."""

    def __init__(self, services) -> None:
        self.services = services

    def collect(self) -> Iterator[Metric]:
        services = self.services
        unfinished = GaugeMetricFamily(
            "mpo_requests_unfinished", "Requests admitted to the engine and not yet finished or aborted."
        )
        unfinished.add_metric([], services.client.engine.get_num_unfinished_requests())
        yield unfinished
        admission = services.admission
        waiting = GaugeMetricFamily(
            "mpo_requests_in_flight",
            "OpenAI requests admitted and not finished, and those of them waiting.",
            labels=["state"],
        )
        waiting.add_metric(["admitted"], admission.in_flight)
        waiting.add_metric(["waiting"], admission.waiting)
        yield waiting
        weights = GaugeMetricFamily("mpo_default_weight", "Default mixture weight of each policy.", labels=["policy"])
        for policy, weight in services.client.mixture.default_weights.items():
            weights.add_metric([policy], weight)
        yield weights
        serving = services.client.mixture.manifest.serving
        held = GaugeMetricFamily(
            "mpo_component_weight_bytes",
            "Bytes of weights each component holds in the engine, and the mode LoRA components are served in: "
            "shared (the reference holds the base, an adapter the deltas built from its factors) "
            "or merged (each a whole model).",
            labels=["component", "mode"],
        )
        for component, size in serving.weight_bytes.items():
            held.add_metric([component, serving.mode], size)
        yield held
        active = services.weights.active_set_id()  # as this replica last saw it: a scrape reads no database
        active_set = GaugeMetricFamily("mpo_active_weight_set", "Id of the active (default) weight set.")
        active_set.add_metric([], active or 0)
        yield active_set
        phases = GaugeMetricFamily(
            "mpo_job_phase", "1 for the phase the running job of each kind is in, else 0.", labels=["kind", "phase"]
        )
        for runner in services.runners:
            current = runner.running.phase if runner.running is not None else None
            known = JOB_PHASES.get(runner.kind, [])
            for phase in dict.fromkeys([*known, *([current] if current else [])]):
                phases.add_metric([runner.kind, phase], 1.0 if phase == current else 0.0)
        yield phases


def exposition() -> tuple[bytes, str]:
    """The text a scrape gets, and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
