"""Decode throughput: vLLM serving one policy vs the mixture of all components, and the
per-step transformers loop a researcher would otherwise write. Plus resident memory.

Every measurement runs in its own process (spawned), one after another, on the same prompts:
B prompts of equal length, greedy, `ignore_eos`, N new tokens. Decode throughput is
B * (N - 1) / (t(N) - t(1)): the time for one token (prefill and set-up) is measured
separately and taken off, so only decoding counts.
"""

import gc
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from multiprocessing import get_context
from pathlib import Path

PROMPT_TOKENS = 16


def prompts_for(tokenizer_dir: Path, batch: int) -> list[list[int]]:
    """`batch` different prompts of exactly PROMPT_TOKENS tokens, from the shipped corpus."""
    from transformers import AutoTokenizer

    from demo.pretrain import read_corpus

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    texts = iter(read_corpus())
    prompts: list[list[int]] = []
    while len(prompts) < batch:
        ids = tokenizer(next(texts))["input_ids"]
        if len(ids) >= PROMPT_TOKENS:
            prompts.append(ids[:PROMPT_TOKENS])
    return prompts


def decode_rate(generate: Callable[[int], object], batch: int, new_tokens: int) -> float:
    """Decode tokens/s of generate(tokens), with the one-token time (prefill, set-up) taken off."""

    def timed(tokens: int) -> float:
        start = time.perf_counter()
        generate(tokens)
        return time.perf_counter() - start

    timed(2)  # warm-up
    first, full = timed(1), timed(new_tokens)
    return batch * (new_tokens - 1) / (full - first)


def _rss_tree_bytes() -> int:
    import psutil

    me = psutil.Process()
    return sum(p.memory_info().rss for p in [me, *me.children(recursive=True)])


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
    """Decode tokens/s per batch size, and resident memory of the engine's processes."""
    from vllm import SamplingParams

    engine = vllm_engine(manifest_path, single, max(batches))
    tokenizer_dir = engine.llm_engine.model_config.tokenizer
    results: dict = {"rss_bytes": _rss_tree_bytes()}

    def generate(prompts: list[dict], tokens: int) -> None:
        engine.generate(prompts, SamplingParams(max_tokens=tokens, temperature=0, ignore_eos=True), use_tqdm=False)

    for batch in batches:
        prompts = [{"prompt_token_ids": p} for p in prompts_for(Path(tokenizer_dir), batch)]
        results[batch] = decode_rate(partial(generate, prompts), batch, new_tokens)
    results["rss_bytes"] = max(results["rss_bytes"], _rss_tree_bytes())
    # Stop the engine's processes now: a pool worker cannot exit while they run.
    engine.llm_engine.engine_core.shutdown()
    return results


def measure_loop(model_dirs: list[str], weights: list[float], batches: list[int], new_tokens: int) -> dict:
    """The per-step transformers loop: one KV cache per component, mix log-probs each step."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(os.cpu_count() or 1)
    models = [AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32).eval() for d in model_dirs]
    results: dict = {}

    @torch.no_grad()
    def generate(prompts: torch.Tensor, tokens: int) -> None:
        caches: list = [None] * len(models)
        current = prompts
        for _ in range(tokens):
            mixed = None
            for k, model in enumerate(models):
                out = model(input_ids=current, past_key_values=caches[k], use_cache=True)
                caches[k] = out.past_key_values
                term = weights[k] * torch.log_softmax(out.logits[:, -1].float(), dim=-1)
                mixed = term if mixed is None else mixed + term
            current = torch.log_softmax(mixed, dim=-1).argmax(dim=-1, keepdim=True)

    for batch in batches:
        prompts = torch.tensor(prompts_for(Path(model_dirs[0]), batch))
        results[batch] = decode_rate(partial(generate, prompts), batch, new_tokens)
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
