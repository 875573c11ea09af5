"""What a fit costs over the engine work it needs (goal <= 1.3), and over serving its samples.

One server on the tiny demo mixture; in one run, in turns:
  fit:          POST /admin/fit with N prompts (the server samples m responses per prompt from
                the reference, records every component's log-probs, runs mirror descent);
  sample+score: the same N x m samples and every component's log-probs through /admin/sample
                (the engine work a fit cannot do without: every component runs each step);
  generate:     the same N x m samples from the reference through /v1/completions (model
                "ref", n=m, temperature 1, same max_tokens): serving traffic, which runs the
                reference alone since steps skip unneeded components.
The goal is fit / sample+score (the fit's own overhead: jobs, solver, store). fit / generate
is printed too: it is at least about the number of components wherever compute dominates,
since the fit must read all of them. Usage: .venv/bin/python -m bench.fit_overhead [--prompts 64]
"""

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from client.jobs import JobClient
from launchers.processes import MpoServer
from server.cli.main import demo_manifest
from server.settings import Settings

ADMIN_TOKEN = "bench-admin-token-0123"  # the server this bench starts is its own


async def generate(url: str, prompts: list[str], m: int, max_tokens: int, seed: int) -> tuple[float, int]:
    async with httpx.AsyncClient(base_url=url, timeout=600) as client:
        start = time.perf_counter()
        bodies = [
            {
                "model": "ref",
                "prompt": p,
                "n": m,
                "max_tokens": max_tokens,
                "temperature": 1.0,
                "top_p": 1.0,
                "seed": seed + i,
            }
            for i, p in enumerate(prompts)
        ]
        responses = await asyncio.gather(*(client.post("/v1/completions", json=b) for b in bodies))
        elapsed = time.perf_counter() - start
    tokens = sum(r.json()["usage"]["completion_tokens"] for r in responses)
    return elapsed, tokens


def sample_and_score(url: str, prompts: list[str], m: int, max_tokens: int, seed: int) -> float:
    """Seconds for /admin/sample of the same samples: sampled from the reference, every
    component's log-probs recorded."""
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    body = {"prompts": prompts, "n": m, "max_tokens": max_tokens, "seed": seed}
    with httpx.Client(base_url=url, headers=headers, timeout=600) as client:
        start = time.perf_counter()
        client.post("/admin/sample", json=body).raise_for_status()
        return time.perf_counter() - start


def fit(url: str, prompts: list[str], m: int, max_tokens: int, iterations: int, seed: int) -> tuple[float, dict]:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    body = {
        "items": [{"prompt": p} for p in prompts],
        "options": {"samples_per_prompt": m, "max_tokens": max_tokens, "iterations": iterations, "seed": seed},
    }
    with httpx.Client(base_url=url, headers=headers, timeout=600) as client:
        start = time.perf_counter()
        status = JobClient(client, "fit").run(body, interval=0.05)
        return time.perf_counter() - start, status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--samples-per-prompt", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=40)
    parser.add_argument("--iterations", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    settings = Settings(demo="tiny")
    manifest = demo_manifest(settings)
    prompts = [json.loads(line)["prompt"] for line in (manifest.parent / "prompts.jsonl").read_text().splitlines()]
    prompts = prompts[: args.prompts]
    with tempfile.TemporaryDirectory() as scratch:
        env = {"MPO_ADMIN_TOKEN": ADMIN_TOKEN, "MPO_STORE_PATH": str(Path(scratch) / "w.sqlite")}
        server = MpoServer(manifest, settings.data_dir, Path(scratch) / "server.log", env)
        try:
            server.wait_ready()
            m, n = args.samples_per_prompt, args.max_tokens
            asyncio.run(generate(server.url, prompts[:4], m, n, 0))  # warm-up
            fits, gens, samples, tokens, phases = [], [], [], [], []
            for r in range(args.repeats):
                gen_s, gen_tokens = asyncio.run(generate(server.url, prompts, m, n, 1000 * r))
                samples.append(sample_and_score(server.url, prompts, m, n, 1000 * r))
                fit_s, status = fit(server.url, prompts, m, n, args.iterations, 1000 * r)
                phases.append(status["timings_s"])
                gens.append(gen_s)
                fits.append(fit_s)
                tokens.append(gen_tokens)
        finally:
            server.stop()
    fit_s, gen_s, sample_s = statistics.median(fits), statistics.median(gens), statistics.median(samples)
    result = {
        "prompts": len(prompts),
        "samples_per_prompt": args.samples_per_prompt,
        "max_tokens": args.max_tokens,
        "iterations": args.iterations,
        "generate_s": gens,
        "sample_and_score_s": samples,
        "fit_s": fits,
        "generated_tokens": tokens,
        "fit_phases_s": phases,
        "ratio_fit_over_sample_and_score": fit_s / sample_s,
        "ratio_fit_over_generate": fit_s / gen_s,
        "goal": 1.3,
    }
    print(f"{'':<28}{'median s':>10}   runs")
    print(f"{'generate samples alone':<28}{gen_s:>10.2f}   {', '.join(f'{x:.2f}' for x in gens)}")
    print(f"{'sample+score alone':<28}{sample_s:>10.2f}   {', '.join(f'{x:.2f}' for x in samples)}")
    print(f"{'fit (sample+score+solve)':<28}{fit_s:>10.2f}   {', '.join(f'{x:.2f}' for x in fits)}")
    for phase in phases[0]:
        print(f"{'  fit: ' + phase:<28}{statistics.median(p.get(phase, 0.0) for p in phases):>10.2f}")
    print(f"fit / sample+score = {fit_s / sample_s:.3f} (goal <= 1.3)")
    print(f"fit / generate = {fit_s / gen_s:.3f} (the fit reads every component; serving the reference runs one)")
    print(json.dumps(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
