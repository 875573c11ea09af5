"""vLLM's Ray executor on CPU nodes: what vLLM 0.32 lacks to place CPU workers with Ray.

vLLM places Ray workers by an accelerator resource (`Platform.ray_device_key`: "GPU" on CUDA)
and its CPU platform names none, so `distributed_executor_backend: ray` refuses to start there
("current platform cpu does not support ray"). Two things make it run, measured to serve the
same greedy tokens as one process (tests/server/test_tensor_parallel.py):

1. the CPU platform's `ray_device_key` names a custom Ray resource, RESOURCE, which every Ray
   node offers once per worker rank it may host (`ray start --resources '{"vllm_cpu_rank": 1}'`;
   Ray reserves "CPU" for its own accounting and refuses it as a custom resource);
2. a worker reports its node with no accelerator ids (vLLM reads them from Ray's accelerator
   table, which has no entry for a custom resource): each worker's local rank then follows
   from the node it landed on, as on GPUs.

`enable` runs in every process that takes part: the EngineCore, where vLLM loads this plugin
before it builds the executor (mixer.register, when the server set SWITCH: importing Ray costs
seconds, which no other process should pay), and each Ray worker, whose process runs it first
through Ray's `worker_process_setup_hook` (`runtime_env`, see `connect`).
"""

import os

RESOURCE = "vllm_cpu_rank"
SETUP_HOOK = "mixer.ray_cpu.enable"
SWITCH = "MPO_RAY_ON_CPU"  # set by server.engine for an engine with the Ray executor on CPU


def _node_without_accelerators(self) -> tuple[str, list[int]]:
    import ray

    return ray.get_runtime_context().get_node_id(), []


def enable() -> None:
    """On CPU with Ray installed: the two changes above (idempotent; nothing otherwise)."""
    from vllm.platforms import current_platform

    if not current_platform.is_cpu():
        return
    try:
        from vllm.v1.executor import ray_executor_v2, ray_utils
    except ImportError:  # Ray is not installed: the executor cannot be chosen anyway
        return
    type(current_platform).ray_device_key = RESOURCE
    ray_executor_v2.RayWorkerProc.get_node_and_physical_gpu_ids = _node_without_accelerators
    if ray_utils.RayWorkerWrapper is not None:  # the older executor (VLLM_USE_RAY_V2_EXECUTOR_BACKEND=0)
        ray_utils.RayWorkerWrapper.get_node_and_physical_gpu_ids = _node_without_accelerators


def connect() -> None:
    """Join the Ray cluster (RAY_ADDRESS, else a running local one) as a driver whose workers
    run `enable` first (vLLM passes this process's Ray runtime environment on to its workers),
    and have the EngineCore process this one starts `enable` too."""
    import ray

    os.environ[SWITCH] = "1"
    if not ray.is_initialized():
        address = os.environ.get("RAY_ADDRESS", "auto")
        ray.init(address=address, runtime_env={"worker_process_setup_hook": SETUP_HOOK})
