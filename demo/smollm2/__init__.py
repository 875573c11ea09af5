"""The default demo: SmolLM2-135M-Instruct (converted offline from a PyPI package's GGUF file)
and LoRA policies aligned from it by DPO."""
