"""The embedded demos, each a reference and policies aligned from it for objectives that are
scored automatically: 'smollm2' (the default: SmolLM2-135M-Instruct with LoRA policies) and
'tiny' (1.3 M-parameter models pretrained here, for tests and quick starts)."""
