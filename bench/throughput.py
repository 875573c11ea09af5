"""Decode throughput: vLLM serving one policy vs the mixture of all components, and the
per-step transformers loop a researcher would otherwise write.

Every measurement runs in its own process (spawned), one after another, on the same prompts:
B prompts of equal length, greedy, `ignore_eos`, N new tokens. Decode throughput is
B * (N - 1) / (t(N) - t(1)): the time for one token (prefill and set-up) is measured
separately and taken off, so only decoding counts. Each time is the best of two runs.
"""

import gc
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from multiprocessing import get_context
from pathlib import Path

PROMPT_TOKENS = 16


def corpus_token_runs(tokenizer_dir: Path, count: int, tokens: int) -> list[list[int]]:
    """`count` different runs of exactly `tokens` tokens: consecutive windows of the shipped corpus."""
    from transformers import AutoTokenizer

    from demo.pretrain import read_corpus

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    stream: list[int] = []
    for text in read_corpus():
        stream += tokenizer(text + "\n")["input_ids"]
        if len(stream) >= count * tokens:
            return [stream[i * tokens : (i + 1) * tokens] for i in range(count)]
    raise ValueError(f"the corpus holds fewer than {count} x {tokens} tokens")


def prompts_for(tokenizer_dir: Path, batch: int) -> list[list[int]]:
    return corpus_token_runs(tokenizer_dir, batch, PROMPT_TOKENS)


def decode_rate(generate: Callable[[int], object], batch: int, new_tokens: int, repeats: int = 2) -> float:
    """Decode tokens/s of generate(tokens), with the one-token time (prefill, set-up) taken off.

    Each time is the best of `repeats` runs: on a shared 2-core machine single runs vary by
    about 10%, and interference only ever makes a run slower."""

    def timed(tokens: int) -> float:
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            generate(tokens)
            best = min(best, time.perf_counter() - start)
        return best

    generate(2)  # warm-up
    first, full = timed(1), timed(new_tokens)
    return batch * (new_tokens - 1) / (full - first)


def vllm_engine(manifest_path: str, single: bool, max_num_seqs: int):
    """An offline vLLM engine with the server's own settings: the mixture (our plugin), or its
    first policy as a plain model (same dtype, context and KV budget)."""
    from vllm import LLM

    from mixer.manifest import load_manifest, write_model_folder
    from server.engine import configure_environment, engine_kwargs
    from server.settings import Settings

    manifest = load_manifest(manifest_path)
    configure_environment(manifest.kv_cache_gib)
    settings = Settings(max_num_seqs=max_num_seqs)
    if single:
        return LLM(**engine_kwargs(manifest, manifest.components[1].path, settings, mixture=False))
    folder = write_model_folder(manifest, Path(manifest_path).parent / "bench-model")
    return LLM(**engine_kwargs(manifest, folder, settings))


def measure_vllm(manifest_path: str, single: bool, batches: list[int], new_tokens: int) -> dict:
    """Decode tokens/s per batch size."""
    from vllm import SamplingParams

    engine = vllm_engine(manifest_path, single, max(batches))
    tokenizer_dir = engine.llm_engine.model_config.tokenizer
    results: dict = {}

    def generate(prompts: list[dict], tokens: int) -> None:
        engine.generate(prompts, SamplingParams(max_tokens=tokens, temperature=0, ignore_eos=True), use_tqdm=False)

    for batch in batches:
        prompts = [{"prompt_token_ids": p} for p in prompts_for(Path(tokenizer_dir), batch)]
        results[batch] = decode_rate(partial(generate, prompts), batch, new_tokens)
    # Stop the engine's processes now: a pool worker cannot exit while they run.
    engine.llm_engine.engine_core.shutdown()
    return results


def measure_loop(model_dirs: list[str], weights: list[float], batches: list[int], new_tokens: int) -> dict:
    """The per-step transformers loop on the same prompts (see bench/loop.py)."""
    from bench.loop import load_models, mixed_greedy

    models = load_models(model_dirs)
    results: dict = {}
    for batch in batches:
        prompts = prompts_for(Path(model_dirs[0]), batch)
        results[batch] = decode_rate(partial(mixed_greedy, models, weights, prompts), batch, new_tokens)
        gc.collect()
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
