"""The benchmarks' SmolLM2 subject: SmolLM2-135M-Instruct (converted by the demo's shared
conversion, demo/smollm2/convert.py) mixed with itself, a valid subject of the right size."""

from pathlib import Path

from demo.smollm2.convert import convert

__all__ = ["convert", "self_mixture_manifest"]


def self_mixture_manifest(folder: Path, out: Path, components: int = 3, max_model_len: int = 512) -> Path:
    """A manifest mixing the model with itself: a valid throughput subject of the right size."""
    import yaml

    policies = [{"name": f"copy{i}", "path": str(folder)} for i in range(1, components)]
    out.write_text(
        yaml.safe_dump(
            {
                "name": "smollm2-self-mix",
                "reference": {"name": "ref", "path": str(folder)},
                "policies": policies,
                "weights": {p["name"]: 1.0 for p in policies},
                "dtype": "float32",
                "max_model_len": max_model_len,
                "kv_cache_gib": 2,
            },
            sort_keys=False,
        )
    )
    return out
