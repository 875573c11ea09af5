"""The vLLM plugin that serves a log-linear mixture of policies as one model.

`register` is the `vllm.general_plugins` entry point. vLLM calls it in every process it
spawns, so it registers lazily (by "module:Class" string) and only once.
"""

ARCHITECTURE = "LogLinearMixtureForCausalLM"
PROCESSOR = "mixer.processor:MixtureLogitsProcessor"
WORKER_EXTENSION = "mixer.worker.MixtureWorkerExtension"


def register() -> None:
    from vllm import ModelRegistry

    if ARCHITECTURE not in ModelRegistry.get_supported_archs():
        ModelRegistry.register_model(ARCHITECTURE, "mixer.model:LogLinearMixtureForCausalLM")
