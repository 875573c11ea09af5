"""Worker extension: control of the running mixture model through collective_rpc.

vLLM mixes this class into its worker (`worker_extension_cls`), so methods here run in the
worker process that owns the model and can change it between steps.
"""

from mixer import seeded_prefill
from mixer.needed import WEIGHTS_ARG
from mixer.recording import RECORDER
from mixer.step_state import STEP


class MixtureWorkerExtension:
    """Methods the server calls with `engine.collective_rpc(name, args=...)`."""

    def take_recorded(self, keys: list[str]) -> dict[str, list[dict]]:
        """Per-component sequence log-probs and token ids of finished recording requests."""
        return RECORDER.take(keys)

    def install_seeded_prefill_fix(self) -> bool:
        """Seeded requests survive chunked prefill on CPU (mixer/seeded_prefill.py)."""
        return seeded_prefill.install(self.model_runner)  # type: ignore[attr-defined]

    def install_request_prompt_logprobs(self) -> bool:
        """Score each request's prompt under that request's own weights.

        vLLM computes prompt log-probs (echo) straight from compute_logits, whose rows are
        then prompt positions, not the step's requests. The runner's method handles the
        requests one by one; here it is called once per request with only that request
        pending and the request's weights in STEP, which compute_logits then uses.
        """
        runner = self.model_runner  # type: ignore[attr-defined]
        model = runner.get_model()
        original = runner._get_prompt_logprobs_dict
        if getattr(original, "_mixture_aware", False):
            return False

        def per_request(hidden_states, num_scheduled_tokens):
            pending = runner.num_prompt_logprobs
            results = {}
            try:
                for req_id, count in list(pending.items()):
                    single = {req_id: count}
                    runner.num_prompt_logprobs = single
                    weights = (runner.requests[req_id].sampling_params.extra_args or {}).get(WEIGHTS_ARG)
                    STEP.prompt_weights = weights if weights is not None else model.default_weights.tolist()
                    results.update(original(hidden_states, num_scheduled_tokens))
                    if req_id not in single:  # its prompt is complete
                        del pending[req_id]
            finally:
                runner.num_prompt_logprobs = pending
                STEP.prompt_weights = None
            return results

        per_request._mixture_aware = True  # type: ignore[attr-defined]
        runner._get_prompt_logprobs_dict = per_request
        return True
