"""What a mixture costs before it serves anything: resident memory and start-up time, for the
reference alone and with one and two of its adapters, served shared and merged.

Each configuration starts its own engine in a fresh spawned process, with the server's
settings: "reference alone" is vLLM serving the reference checkpoint as a plain model; the
others are the mixture engine on a manifest of the reference and the first one or two
policies, with lora_mode forced. Start-up runs from loading the manifest (merged: the peft
merges, into an empty cache; and again with the merges cached) to the first generated token.
Memory is the resident set of the engine's processes (EngineCore and its worker, where the
weights and the KV cache live: the same vLLM code for every configuration), read after a
short generation; the KV budget is the manifest's in every configuration.
"""

import tempfile
import time
from pathlib import Path

from bench.modes import variant
from bench.throughput import in_subprocess


def engine_footprint(manifest_path: str, work_dir: str, plain: bool = False) -> dict:
    """Start-up seconds and the engine processes' resident bytes of one configuration (plain:
    the manifest's reference as a plain model)."""
    import psutil
    from vllm import SamplingParams

    from bench.throughput import vllm_engine
    from mixer.manifest import load_manifest

    start = time.perf_counter()
    manifest = load_manifest(manifest_path, None if plain else Path(work_dir) / "merged")
    engine = vllm_engine(manifest, None if plain else Path(work_dir) / "model", max_num_seqs=8)
    engine.generate([{"prompt_token_ids": [1, 2, 3]}], SamplingParams(max_tokens=4), use_tqdm=False)
    seconds = time.perf_counter() - start
    children = psutil.Process().children(recursive=True)
    rss = sum(p.memory_info().rss for p in children)
    engine.llm_engine.engine_core.shutdown()
    return {"startup_s": seconds, "engine_rss_bytes": rss}


def measure_footprint(manifest_path: Path, modes: list[str]) -> dict:
    """Per configuration (reference alone; reference + 1 and + 2 adapters in each mode; the
    whole manifest merged with its merges cached): start-up and engine memory."""
    results: dict = {}
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        print("  reference alone", flush=True)
        results["reference"] = in_subprocess(engine_footprint, str(manifest_path), str(work / "ref"), True)
        for mode in modes:
            for count in (1, 2):
                name = f"{count}_{mode}"
                print(f"  reference + {count} adapter(s), {mode}", flush=True)
                path = variant(manifest_path, work / name / "manifest.yaml", policies=count, lora_mode=mode)
                results[name] = in_subprocess(engine_footprint, str(path), str(work / name))
        if "merged" in modes:
            print("  reference + 2 adapters, merged, merges cached", flush=True)
            path = work / "2_merged" / "manifest.yaml"
            results["2_merged_cached"] = in_subprocess(engine_footprint, str(path), str(work / "2_merged"))
    return results
