"""Decode throughput: vLLM serving one policy vs the mixture of all components, and the
per-step transformers loop a researcher would otherwise write.

All of them run in one spawned process per subject, on the same prompts:
B prompts of equal length, greedy, `ignore_eos`, N new tokens. Decode throughput is
B * (N - 1) / (t(N) - t(1)): the time for one token (prefill and set-up) is measured
separately and taken off, so only decoding counts. Each time is the best of two runs, the
four subjects timed in turns.
"""

import gc
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from multiprocessing import get_context
from pathlib import Path

from mixer.manifest import Manifest, load_manifest

PROMPT_TOKENS = 16
SETTLE_S = 0.5
RUNNERS = ["vllm_single", "vllm_mixture", "loop_single", "loop_mixture"]


def corpus_token_runs(tokenizer_dir: Path, count: int, tokens: int) -> list[list[int]]:
    """`count` different runs of exactly `tokens` tokens: consecutive windows of the shipped corpus."""
    from transformers import AutoTokenizer

    from demo.tiny.pretrain import read_corpus

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    stream: list[int] = []
    for text in read_corpus():
        stream += tokenizer(text + "\n")["input_ids"]
        if len(stream) >= count * tokens:
            return [stream[i * tokens : (i + 1) * tokens] for i in range(count)]
    raise ValueError(f"the corpus holds fewer than {count} x {tokens} tokens")


def prompts_for(tokenizer_dir: Path, batch: int) -> list[list[int]]:
    return corpus_token_runs(tokenizer_dir, batch, PROMPT_TOKENS)


def decode_rate(batch: int, new_tokens: int, first: float, full: float) -> float:
    """Decode tokens/s: B (N - 1) / (t(N) - t(1))."""
    return batch * (new_tokens - 1) / (full - first)


def best_time(generate: Callable[[int], object], tokens: int, best: float) -> float:
    """min(best, the time of one generate(tokens) call).

    OpenMP threads spin for a while after their work is done; the runner that ran just
    before (another process) would steal the cores from a short timed call. Let them settle."""
    time.sleep(SETTLE_S)
    start = time.perf_counter()
    generate(tokens)
    return min(best, time.perf_counter() - start)


def vllm_engine(manifest: Manifest, manifest_path: Path, single: bool, max_num_seqs: int):
    """An offline vLLM engine with the server's own settings: the mixture (our plugin), or its
    first policy as a plain model (same dtype, context and KV budget)."""
    from vllm import LLM

    from mixer.manifest import write_model_folder
    from server.engine import configure_environment, engine_kwargs
    from server.settings import Settings

    configure_environment(manifest.kv_cache_gib)
    settings = Settings(max_num_seqs=max_num_seqs)
    if single:
        return LLM(**engine_kwargs(manifest, manifest.components[1].path, settings, mixture=False))
    folder = write_model_folder(manifest, manifest_path.parent / "bench-model")
    return LLM(**engine_kwargs(manifest, folder, settings))


def vllm_generate(engine, prompts: list[list[int]], tokens: int) -> None:
    from vllm import SamplingParams

    engine.generate(
        [{"prompt_token_ids": p} for p in prompts],
        SamplingParams(max_tokens=tokens, temperature=0, ignore_eos=True),
        use_tqdm=False,
    )


def measure_decode(manifest_path: str, batches: list[int], new_tokens: int, rounds: int = 2) -> dict:
    """Decode tokens/s of vLLM single / mixture and the loop single / mixture, per batch size.

    All four live in this one process (the engines' workers in their own) and are timed in
    turns, `rounds` times, keeping each one's best: a shared machine that slows down for a
    minute then slows all four, not just whichever ran during that minute."""
    from bench.loop import load_models, mixed_greedy

    manifest = load_manifest(manifest_path)
    engines = [vllm_engine(manifest, Path(manifest_path), single, max(batches)) for single in (True, False)]
    models = load_models([str(c.path) for c in manifest.components])
    tokenizer_dir = Path(manifest.components[1].path)
    results: dict = {name: {} for name in RUNNERS}
    for batch in batches:
        prompts = prompts_for(tokenizer_dir, batch)
        generators = dict(
            zip(
                RUNNERS,
                [
                    partial(vllm_generate, engines[0], prompts),
                    partial(vllm_generate, engines[1], prompts),
                    partial(mixed_greedy, models[1:2], [1.0], prompts),
                    partial(mixed_greedy, models, manifest.weight_vector(), prompts),
                ],
                strict=True,
            )
        )
        for generate in generators.values():
            generate(2)  # warm-up
        best = {name: [float("inf"), float("inf")] for name in RUNNERS}
        for _ in range(rounds):
            for name, generate in generators.items():
                best[name] = [best_time(generate, 1, best[name][0]), best_time(generate, new_tokens, best[name][1])]
        for name, (first, full) in best.items():
            results[name][batch] = decode_rate(batch, new_tokens, first, full)
        gc.collect()
    for engine in engines:  # stop the engines' processes now: a pool worker cannot exit while they run
        engine.llm_engine.engine_core.shutdown()
    return results


def _reporting(function, *args):
    try:
        return function(*args)
    except Exception as err:  # noqa: BLE001 - not every exception pickles back to the parent
        raise RuntimeError(f"{type(err).__name__}: {err}") from None


def in_subprocess(function, *args):
    """Run one measurement in a fresh spawned process (vLLM engines do not share a process well)."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(_reporting, function, *args).result()
