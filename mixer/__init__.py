"""The vLLM plugin that serves a log-linear mixture of policies as one model.

`register` is the `vllm.general_plugins` entry point. vLLM calls it in every process it
spawns, so it registers lazily (by "module:Class" string) and only once.
"""

ARCHITECTURE = "LogLinearMixtureForCausalLM"  # every component a sub-model (mixer.model)
SHARED_ARCHITECTURE = "SharedBaseMixtureForCausalLM"  # LoRA components on one base (mixer.lora.model)
PROCESSOR = "mixer.processor:MixtureLogitsProcessor"
WORKER_EXTENSION = "mixer.worker.MixtureWorkerExtension"
# The shared base's per-component attention op (mixer.lora.compiled), a splitting op under CUDA graphs.
COMPONENT_ATTENTION_OP = "vllm::mpo_component_attention"


def register() -> None:
    import os

    from vllm import ModelRegistry

    from mixer import ray_cpu

    if os.environ.get(ray_cpu.SWITCH):
        ray_cpu.enable()

    supported = ModelRegistry.get_supported_archs()
    if ARCHITECTURE not in supported:
        ModelRegistry.register_model(ARCHITECTURE, "mixer.model:LogLinearMixtureForCausalLM")
    if SHARED_ARCHITECTURE not in supported:
        ModelRegistry.register_model(SHARED_ARCHITECTURE, "mixer.lora.model:SharedBaseMixtureForCausalLM")
