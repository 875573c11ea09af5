"""Decode throughput of what the engine serves, against the plain model and its own ideal,
in each way the mixture can be served, and the per-step transformers loop a researcher
would otherwise write.

    .venv/bin/python -m bench.throughput [--subject smollm2 | --manifest M] [--batches 1] [--modes shared] [--rounds 5]

runs item 1 of bench.run alone, for a closer look at a few batch sizes with more rounds,
and prints each runner's rate and its per-round ratios to the plain model.

Runners, all in one spawned process per subject and timed in turns on the same prompts
(B prompts of equal length, greedy, `ignore_eos`); for each serving mode M (shared base,
merged sub-models, shared_per_component: the shared base's earlier two GEMMs per component's
delta; bench.modes) the mixture engine of that mode gets three kinds of requests:
  single          vLLM serving the reference as a plain model: the unit;
  one_policy_M    requests weighting one policy (runs 1 component);
  two_policy_M    the default weights over the policies (runs the policies);
  all_M           fit traffic: recording requests sampled from the reference, which read
                  every component (runs all of them);
  loop_single     the transformers loop on one policy (a full checkpoint; adapters merged);
  loop_mixture    the transformers loop on the policies with the default weights.
Ideal = single / components the requests run (merged sub-models cannot beat it; the shared
base reads the base once per step, so where decoding reads weights it can). Rates are slopes
over several lengths, repeated in rounds (bench.rates says why and how).
"""

import gc
import itertools
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from multiprocessing import get_context
from pathlib import Path

from bench.modes import loop_checkpoints, modes_of, served_in
from bench.rates import decode_rates, figure, format_figure
from mixer.manifest import Manifest, load_manifest
from mixer.needed import RECORD_ARG, WEIGHTS_ARG

PROMPT_TOKENS = 16
SETTLE_S = 0.5
LENGTHS = [8, 24, 40]  # output tokens timed in each round
ROUNDS = 3
KINDS = ["one_policy", "two_policy", "all"]


def runners(modes: list[str]) -> list[str]:
    return ["single", *(f"{kind}_{mode}" for mode in modes for kind in KINDS), "loop_single", "loop_mixture"]


def components_run(manifest: Manifest) -> dict[str, int]:
    """How many components each kind of request runs: the divisor of its ideal."""
    return {"one_policy": 1, "two_policy": len(manifest.policies), "all": len(manifest.components)}


def kind_weights(manifest: Manifest) -> dict[str, list[float]]:
    """The weight vector of each kind of request: one-hot on the first policy, the default
    mixture, and the reference's one-hot that fit traffic (recording requests) samples from."""
    count = len(manifest.components)
    first = manifest.components.index(manifest.policies[0])
    return {
        "one_policy": [1.0 if i == first else 0.0 for i in range(count)],
        "two_policy": manifest.weight_vector(),
        "all": [1.0] + [0.0] * (count - 1),
    }


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


def timed(generate: Callable[[int], object], tokens: int) -> float:
    """Seconds of one generate(tokens) call.

    OpenMP threads spin for a while after their work is done; the runner that ran just
    before (another process) would steal the cores from a short timed call. Let them settle."""
    time.sleep(SETTLE_S)
    start = time.perf_counter()
    generate(tokens)
    return time.perf_counter() - start


def vllm_engine(manifest: Manifest, folder: Path | None, max_num_seqs: int, **settings_fields):
    """An offline vLLM engine with the server's own settings (and `settings_fields`): the
    mixture (our plugin) written into `folder`, or with folder None its reference as a plain
    model (same dtype, context and KV budget)."""
    from vllm import LLM

    from mixer.manifest import write_model_folder
    from server.engine import configure_environment, engine_kwargs
    from server.settings import Settings

    configure_environment(manifest.kv_cache_gib)
    settings = Settings(max_num_seqs=max_num_seqs, **settings_fields)
    if folder is None:
        return LLM(**engine_kwargs(manifest, manifest.reference.path, settings, mixture=False))
    return LLM(**engine_kwargs(manifest, write_model_folder(manifest, folder), settings))


class MixtureRequests:
    """Generates on the mixture engine with one kind of request: fixed weights, or recording
    requests from the reference (fit traffic), whose recordings are collected and dropped."""

    keys = itertools.count()

    def __init__(self, engine, weights: list[float], record: bool = False) -> None:
        self.engine, self.weights, self.record = engine, weights, record

    def __call__(self, prompts: list[list[int]], tokens: int) -> None:
        from vllm import SamplingParams

        keys = [f"bench-{next(self.keys)}" for _ in prompts] if self.record else [None] * len(prompts)
        params = [
            SamplingParams(
                max_tokens=tokens,
                temperature=0,
                ignore_eos=True,
                extra_args={WEIGHTS_ARG: self.weights, **({RECORD_ARG: key} if key else {})},
            )
            for key in keys
        ]
        self.engine.generate([{"prompt_token_ids": p} for p in prompts], params, use_tqdm=False)
        if self.record:
            self.engine.collective_rpc("take_recorded", args=(keys,))


def plain_generate(engine, prompts: list[list[int]], tokens: int) -> None:
    from vllm import SamplingParams

    engine.generate(
        [{"prompt_token_ids": p} for p in prompts],
        SamplingParams(max_tokens=tokens, temperature=0, ignore_eos=True),
        use_tqdm=False,
    )


def measure_decode(
    manifest_path: str,
    batches: list[int],
    modes: list[str],
    work_dir: str,
    lengths: list[int] = LENGTHS,
    rounds: int = ROUNDS,
) -> dict:
    """Per runner and batch size: every round's decode tokens/s and their median and spread.

    All runners live in this one process (the engines' workers in their own) and are timed
    in turns within each round: a shared machine that slows down for a minute then slows all
    of them, and the ratios taken within a round stay fair."""
    from bench.loop import load_models, mixed_greedy

    work = Path(work_dir)
    manifest = load_manifest(manifest_path)
    # every variant loaded before any engine starts: a bad one fails before one runs
    served = {mode: served_in(Path(manifest_path), work, mode) for mode in modes}
    single_engine = vllm_engine(manifest, None, max(batches))
    mixture_engines = {
        mode: vllm_engine(loaded, work / f"model-{mode}", max(batches), **settings)
        for mode, (loaded, settings) in served.items()
    }
    policies = [manifest.components.index(p) for p in manifest.policies]
    checkpoints = loop_checkpoints(manifest, work / "merged")
    policy_models = load_models([str(checkpoints[i]) for i in policies])
    weights = kind_weights(manifest)
    default = weights["two_policy"]
    tokenizer_dir = Path(manifest.reference.path)
    names = runners(modes)
    results: dict = {name: {} for name in names}
    for batch in batches:
        prompts = prompts_for(tokenizer_dir, batch)
        generators: dict[str, Callable[[int], object]] = {"single": partial(plain_generate, single_engine, prompts)}
        for mode, engine in mixture_engines.items():
            for kind in KINDS:
                requests = MixtureRequests(engine, weights[kind], record=kind == "all")
                generators[f"{kind}_{mode}"] = partial(requests, prompts)
        generators["loop_single"] = partial(mixed_greedy, policy_models[:1], [1.0], prompts)
        generators["loop_mixture"] = partial(mixed_greedy, policy_models, [default[i] for i in policies], prompts)
        for generate in generators.values():
            generate(2)  # warm-up
        times: dict[str, list[list[float]]] = {name: [] for name in names}
        for _ in range(rounds):
            for name, generate in generators.items():
                times[name].append([timed(generate, n) for n in lengths])
        for name in names:
            rates = decode_rates(batch, lengths, times[name])
            results[name][batch] = {"rounds": rates, **figure(rates).to_dict()}
        gc.collect()
    for engine in (single_engine, *mixture_engines.values()):  # a pool worker cannot exit while they run
        engine.llm_engine.engine_core.shutdown()
    return results


ENGINE_LOG = Path("bench-engine.log")  # set by bench.run to a file in its --out folder


def _reporting(log: Path, function, *args):
    """In the measuring process: its output (vLLM's logs, and those of the engine processes it
    starts, which inherit the descriptors) goes to `log`, not to the bench's tables."""
    with log.open("a") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
    try:
        return function(*args)
    except Exception as err:  # noqa: BLE001 - not every exception pickles back to the parent
        raise RuntimeError(f"{type(err).__name__}: {err} (log: {log})") from None


def in_subprocess(function, *args):
    """Run one measurement in a fresh spawned process (vLLM engines do not share a process well)."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(_reporting, ENGINE_LOG.absolute(), function, *args).result()


def main() -> None:
    import argparse

    from bench.run import subject_manifest

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subject", default="smollm2", choices=["tiny", "smollm2"])
    parser.add_argument("--manifest", type=Path, help="a mixture of your own instead of a demo subject")
    parser.add_argument("--batches", type=int, nargs="+", default=[1])
    parser.add_argument(
        "--modes",
        nargs="+",
        default=None,
        help="default: every mode the manifest can be served in; shared_per_component: the earlier deltas",
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--data", type=Path, default=Path.home() / ".cache" / "mpo-serve" / "bench")
    args = parser.parse_args()
    from bench import throughput  # this module by its name: what the measuring process imports

    manifest_path = args.manifest.resolve() if args.manifest else subject_manifest(args.subject, args.data)
    modes = args.modes or modes_of(manifest_path)
    work = str(args.data / f"decode-{manifest_path.parent.name if args.manifest else args.subject}")
    args.data.mkdir(parents=True, exist_ok=True)
    throughput.ENGINE_LOG = args.data / "engine.log"
    print(f"engine logs go to {throughput.ENGINE_LOG}", flush=True)
    measure = throughput.measure_decode
    results = throughput.in_subprocess(measure, str(manifest_path), args.batches, modes, work, LENGTHS, args.rounds)
    for batch in args.batches:
        single = results["single"][batch]
        print(f"batch {batch}: single {format_figure(figure(single['rounds']))} tok/s; per-round ratios to it:")
        for name in runners(modes)[1:]:
            rounds = results[name][batch]["rounds"]
            ratios = [r / s for r, s in zip(rounds, single["rounds"], strict=True)]
            listed = ", ".join(f"{r:.2f}" for r in sorted(ratios))
            rate, ratio = format_figure(figure(rounds)), format_figure(figure(ratios), 2)
            print(f"  {name:<20} {rate:>14} tok/s   {ratio:>12}   [{listed}]")


if __name__ == "__main__":
    main()
