"""A fix for vLLM 0.32 on CPU: a seeded request whose prompt is prefilled in chunks kills the
engine ("RuntimeError: CPU Generator does not use offset").

When a step prefills only part of a prompt, vLLM still samples a token for that request and
then discards it. To undo the draw it rewinds the request's generator with
`set_offset(get_offset() - 4)`, which only CUDA's Philox generators support; a CPU generator
raises, the worker dies and every request in flight fails. It takes nothing more than a
client sending `seed` (evaluation harnesses do) while other prompts fill the step's token
budget, or fit jobs, whose samples are seeded.

The fix undoes the draw exactly instead: the state of each CPU generator whose token will be
discarded is saved before sampling and restored after it, and vLLM's rewind skips those
generators. A seeded request then samples the same tokens whether or not its prefill was
chunked. CUDA generators are left to vLLM's own rewind.
"""

import numpy as np


def install(runner) -> bool:
    """Wrap the runner's sampling and bookkeeping; False if already installed."""
    if getattr(runner._sample, "_seeded_prefill_fix", False):
        return False
    sample, bookkeeping = runner._sample, runner._bookkeeping_sync

    def discarded_cpu_generators() -> dict:
        """Generators of this step's requests whose sampled token will be discarded."""
        batch = runner.input_batch
        rows = np.nonzero(runner.discard_request_mask.np[: batch.num_reqs])[0]
        found = {int(r): batch.generators.get(int(r)) for r in rows}
        return {r: g for r, g in found.items() if g is not None and g.device.type == "cpu"}

    def sample_then_restore(*args, **kwargs):
        saved = {row: generator.get_state() for row, generator in discarded_cpu_generators().items()}
        output = sample(*args, **kwargs)
        for row, state in saved.items():
            runner.input_batch.generators[row].set_state(state)
        return output

    def bookkeeping_without_cpu_rewind(*args, **kwargs):
        hidden = discarded_cpu_generators()
        for row in hidden:
            del runner.input_batch.generators[row]
        try:
            return bookkeeping(*args, **kwargs)
        finally:
            runner.input_batch.generators.update(hidden)

    sample_then_restore._seeded_prefill_fix = True  # type: ignore[attr-defined]
    runner._sample = sample_then_restore
    runner._bookkeeping_sync = bookkeeping_without_cpu_rewind
    return True
