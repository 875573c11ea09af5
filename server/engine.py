"""Starting the one vLLM engine that serves the mixture, with the settings it needs.

The plugin's model class, logits processor and worker extension are wired in here; CPU
defaults follow what was measured on 2-core machines (see docs/architecture.md).
"""

import logging
import os
from pathlib import Path
from typing import Any

import psutil

from mixer import COMPONENT_ATTENTION_OP, PROCESSOR, WORKER_EXTENSION
from mixer.manifest import DELTA_GEMMS_KEY, DELTA_MATMUL_KEY, Manifest, write_model_folder
from server.settings import Settings

logger = logging.getLogger(__name__)
# vLLM runs an offline engine (vllm.LLM) inside the calling process when this is "0".
IN_PROCESS_SWITCH = "VLLM_ENABLE_V1_MULTIPROCESSING"


def cuda_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:  # noqa: BLE001 - any failure to probe means no usable GPU
        return False


def cpu_binding(cores: int, ranks: int) -> str:
    """VLLM_CPU_OMP_THREADS_BIND for `ranks` worker processes: each its own run of cores,
    ranks separated by '|' (vLLM's CPU backend runs one process per tensor/pipeline rank)."""
    if cores < ranks:
        raise ValueError(f"{ranks} parallel ranks need at least {ranks} CPU cores; this machine has {cores}")
    per_rank = cores // ranks
    runs = [(r * per_rank, (r + 1) * per_rank - 1) for r in range(ranks)]
    return "|".join(str(first) if first == last else f"{first}-{last}" for first, last in runs)


def bound_cores(binding: str) -> set[int] | None:
    """The cores a VLLM_CPU_OMP_THREADS_BIND value names ("0-1", "0|1", "0,2-3"), or None where
    it names none ("auto", "nobind", unset)."""
    cores: set[int] = set()
    for part in binding.replace("|", ",").split(","):
        first, _, last = part.strip().partition("-")
        if not first.isdigit() or (last and not last.isdigit()):
            return None
        cores.update(range(int(first), int(last or first) + 1))
    return cores


def engine_core_process(parent: psutil.Process) -> psutil.Process:
    """vLLM's EngineCore process among `parent`'s descendants (its title says so)."""
    children = parent.children(recursive=True)
    found = [p for p in children if "EngineCore" in " ".join([p.name(), *p.cmdline()])]
    if len(found) != 1:
        raise RuntimeError(f"not one EngineCore among {[(p.name(), p.cmdline()) for p in children]}")
    return found[0]


def pin_threads(process: psutil.Process, cores: set[int]) -> None:
    """Every thread of `process` onto `cores` (affinity is per thread in Linux)."""
    for thread in process.threads():
        try:
            os.sched_setaffinity(thread.id, cores)
        except ProcessLookupError:  # a thread that ended meanwhile
            pass


def pin_engine_core() -> None:
    """Keep vLLM's EngineCore process on its workers' cores (CPU only).

    vLLM's shared-memory message queues busy-spin (`sched_yield`) for a second after every read
    (vllm/distributed/device_communicators/shm_broadcast.py, busy_loop_s=1, not configurable), so
    while the engine decodes, EngineCore spins on whichever core is free: the one the binding left
    to this API server, its clients and the database. Beside its worker it waits for that worker
    only, and the server stays responsive under load (bench.engine_affinity; its numbers are in
    docs/benchmarks.md, "Where vLLM's worker and EngineCore run"). Where the worker holds every core
    (the default) this changes nothing. Every thread is pinned: affinity is per thread in Linux.
    """
    cores = bound_cores(os.environ.get("VLLM_CPU_OMP_THREADS_BIND", ""))
    if cuda_available() or cores is None:
        return
    try:
        engine = engine_core_process(psutil.Process())
    except RuntimeError as error:  # an engine inside this process (VLLM_ENABLE_V1_MULTIPROCESSING=0)
        logger.warning("EngineCore not pinned: %s", error)
        return
    pin_threads(engine, cores)
    logger.info("vLLM's EngineCore (pid %d) pinned to its workers' cores %s", engine.pid, sorted(cores))


def configure_environment(kv_cache_gib: float, ranks: int = 1) -> None:
    """vLLM reads these at start-up; values already set by the operator win."""
    # The V2 model runner rejects V1-interface logits processors.
    os.environ.setdefault("VLLM_USE_V2_MODEL_RUNNER", "0")
    if not cuda_available():
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(max(1, round(kv_cache_gib))))
        # By default the CPU backend keeps one core for the front end; on small machines the
        # model then runs on a single core. Use them all.
        cores = os.cpu_count() or 1
        os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
        os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", cpu_binding(cores, ranks))
        # glibc raises its mmap threshold after the first large free, so the float32 weights
        # freed once oneDNN has packed them stay in the heap. A fixed 1 MiB threshold returns
        # them: 0.7 GiB less resident memory for a 3 x 135M mixture, no measurable slow-down.
        os.environ.setdefault("MALLOC_MMAP_THRESHOLD_", str(2**20))


def model_folder(manifest: Manifest, settings: Settings) -> Path:
    """Generate the folder vLLM loads as one model (config, tokenizer, marker weights)."""
    return write_model_folder(manifest, settings.data_dir / "models" / manifest.name)


def engine_kwargs(manifest: Manifest, folder: Path, settings: Settings, *, mixture: bool = True) -> dict:
    """The engine's arguments, shared by the server, the benchmarks and `vllm serve` comparisons.

    The dtype is always explicit: vLLM's "auto" turns a float32 checkpoint into bfloat16, which
    on CPUs without AVX-512 BF16 runs its matmuls without oneDNN, several times slower
    (measured in docs/architecture.md). With mixture=False the same settings serve `folder` as a plain model.
    """
    shared = mixture and manifest.serving.mode == "shared"
    kwargs: dict[str, Any] = {
        "model": str(folder),
        "dtype": manifest.dtype,
        "max_model_len": manifest.max_model_len,
        "max_num_seqs": settings.max_num_seqs,
        "max_logprobs": settings.max_logprobs,
        "enforce_eager": settings.enforce_eager,
        "seed": settings.seed,
        "generation_config": "vllm",
        "enable_prefix_caching": True,
        "kv_cache_memory_bytes": int(manifest.kv_cache_gib * 2**30) if cuda_available() else None,
        "tensor_parallel_size": manifest.tensor_parallel_size,
        "pipeline_parallel_size": manifest.pipeline_parallel_size,
        "distributed_executor_backend": manifest.distributed_executor_backend,
    }
    if mixture:
        if not kwargs["enforce_eager"] and cuda_available():
            # A step runs only the components its requests need: per-component piecewise graphs
            # follow that, a graph of the whole model would replay the captured set.
            kwargs["compilation_config"] = {"cudagraph_mode": "PIECEWISE"}
            if shared:  # the per-component attention reads the step's components: never captured
                from vllm.config import CompilationConfig

                attention_ops = CompilationConfig._attention_ops
                kwargs["compilation_config"]["splitting_ops"] = [*attention_ops, COMPONENT_ATTENTION_OP]
        kwargs |= {
            "served_model_name": [manifest.name],
            # Returned log-probs must include the per-request mixture applied by our processor.
            "logprobs_mode": "processed_logprobs",
            "logits_processors": [PROCESSOR],
            "worker_extension_cls": WORKER_EXTENSION,
            "hf_overrides": {DELTA_MATMUL_KEY: settings.delta_matmul, DELTA_GEMMS_KEY: settings.delta_gemms},
        }
    return kwargs


def warn_if_slow_dtype(dtype: str) -> None:
    """Half-precision weights on a CPU without native BF16/FP16 support fall off the fast path."""
    if dtype == "float32" or cuda_available():
        return
    import torch

    # A private torch probe (vLLM uses it too); if it ever goes away, say nothing.
    if not getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)():
        logger.warning("dtype %s on a CPU without AVX-512 BF16: matmuls run several times slower than float32", dtype)


def start_engine(manifest: Manifest, settings: Settings):
    """An AsyncLLM over the generated mixture model folder."""
    from vllm.engine.arg_utils import AsyncEngineArgs
    from vllm.usage.usage_lib import UsageContext
    from vllm.v1.engine.async_llm import AsyncLLM

    configure_environment(manifest.kv_cache_gib, manifest.tensor_parallel_size * manifest.pipeline_parallel_size)
    folder = model_folder(manifest, settings)
    warn_if_slow_dtype(manifest.dtype)
    logger.info("starting vLLM on %s", folder)
    ray = manifest.distributed_executor_backend == "ray"
    if ray and not cuda_available():
        from mixer import ray_cpu

        ray_cpu.connect()
    engine = AsyncLLM.from_engine_args(
        AsyncEngineArgs(**engine_kwargs(manifest, folder, settings)), usage_context=UsageContext.OPENAI_API_SERVER
    )
    if not ray:  # Ray's workers run on its nodes, not beside this machine's EngineCore
        pin_engine_core()
    return engine


async def prepare_engine(engine) -> None:
    """Per-request weights for prompt log-probs too, and seeded requests that survive chunked
    prefill on CPU (see MixtureWorkerExtension)."""
    await engine.collective_rpc("install_request_prompt_logprobs")
    await engine.collective_rpc("install_seeded_prefill_fix")


def _offline_llm(kv_cache_gib: float, **engine_args):
    """A vllm.LLM with the server's CPU environment and its seeded-prefill fix (an answer
    requested with a seed is the same on every run, whatever shares its steps), its engine and
    its one worker inside this process: the server needs them apart (its event loop must not
    wait on the model), batch work does not, and spawning them costs tens of seconds per
    engine, vLLM imported again in each process (docs/benchmarks.md, "Numbers the code's
    choices rest on"). The switch is set only while the engine starts, so that a server
    started later from this process (`mpo-serve serve` after building the demo, the study's
    server) keeps its engine apart."""
    from vllm import LLM

    configure_environment(kv_cache_gib)
    previous = os.environ.get(IN_PROCESS_SWITCH)
    os.environ[IN_PROCESS_SWITCH] = "0"
    try:
        llm = LLM(**engine_args)
    finally:
        if previous is None:
            os.environ.pop(IN_PROCESS_SWITCH)
        else:
            os.environ[IN_PROCESS_SWITCH] = previous
    llm.collective_rpc("install_seeded_prefill_fix")
    return llm


def offline_engine(model: Path, dtype: str, max_model_len: int, seed: int, max_num_seqs: int = 64):
    """A vllm.LLM on a plain model folder for batch work outside the server (the SmolLM2 demo
    build samples its reference through it). 64 sequences at a time: 256 was no faster on 2
    cores. Close it with shutdown_offline_engine."""
    return _offline_llm(
        2,
        model=str(model),
        dtype=dtype,
        max_model_len=max_model_len,
        max_num_seqs=max_num_seqs,
        seed=seed,
        enforce_eager=True,
        generation_config="vllm",
        worker_extension_cls=WORKER_EXTENSION,
    )


def offline_mixture_engine(manifest: Manifest, folder: Path, seed: int, max_num_seqs: int = 64):
    """A vllm.LLM serving manifest's mixture exactly as the server does (its model folder
    written into folder), for batch work outside the server: the demo build's report asks it
    for each component alone (one-hot weights), on one shared base. Close it with
    shutdown_offline_engine."""
    settings = Settings(max_num_seqs=max_num_seqs, seed=seed)
    model = write_model_folder(manifest, folder)
    return _offline_llm(manifest.kv_cache_gib, **engine_kwargs(manifest, model, settings))


def shutdown_offline_engine(llm) -> None:
    """Stop the engine (and any process it started) so that its memory can be freed."""
    llm.llm_engine.engine_core.shutdown()
