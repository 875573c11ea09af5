"""The benchmark's tables, its verdict against the goals, and its chart."""

from pathlib import Path

GOALS = {
    "mixture_vs_ideal": 0.95,  # every batch size
    "served_vs_loop_b32": 1.2,
    "workload_requests_ratio": 3.0,  # and p50 latency no worse than the loop's
    "http_throughput_ratio": 0.95,
    "ttft_overhead_ms": 5.0,
}


def derived(result: dict) -> dict:
    """The ratios the goals are stated in, for one subject."""
    serving = result["serving"]
    server, loop = serving["workload_server"], serving["workload_loop"]
    mpo, vllm = serving["http_mpo"], serving["http_vllm"]
    return {
        "mixture_vs_ideal": min(row["mixture_vs_ideal"] for row in result["rows"]),
        "served_vs_loop_b32": next(r["served_mixture_vs_loop"] for r in result["rows"] if r["batch"] == 32),
        "workload_requests_ratio": server["requests_per_s"] / loop["requests_per_s"],
        "workload_p50_server_s": server["latency_s"]["p50"],
        "workload_p50_loop_s": loop["latency_s"]["p50"],
        "http_throughput_ratio": mpo["tokens_per_s"] / vllm["tokens_per_s"],
        "ttft_overhead_ms": mpo["unloaded_ttft_ms"]["p50"] - vllm["unloaded_ttft_ms"]["p50"],
    }


def goals(results: list[dict]) -> list[str]:
    """One line per subject and goal: met or MISSED, with the measured value."""
    lines = ["\ngoals"]
    for result in results:
        d = derived(result)
        checks = [
            (
                "1  mixture >= 0.95 of ideal (worst batch)",
                d["mixture_vs_ideal"] >= GOALS["mixture_vs_ideal"],
                f"{d['mixture_vs_ideal']:.2f}",
            ),
            (
                "2a served mixture >= 1.2x loop at batch 32",
                d["served_vs_loop_b32"] >= GOALS["served_vs_loop_b32"],
                f"{d['served_vs_loop_b32']:.2f}x",
            ),
            (
                "2b >= 3x loop requests/s, p50 latency no worse",
                d["workload_requests_ratio"] >= GOALS["workload_requests_ratio"]
                and d["workload_p50_server_s"] <= d["workload_p50_loop_s"],
                f"{d['workload_requests_ratio']:.2f}x, p50 {d['workload_p50_server_s']:.1f} s vs "
                f"{d['workload_p50_loop_s']:.1f} s",
            ),
            (
                "3  HTTP >= 0.95 of vllm serve tokens/s",
                d["http_throughput_ratio"] >= GOALS["http_throughput_ratio"],
                f"{d['http_throughput_ratio']:.2f}",
            ),
            (
                "3  TTFT p50 overhead <= 5 ms (one at a time)",
                d["ttft_overhead_ms"] <= GOALS["ttft_overhead_ms"],
                f"{d['ttft_overhead_ms']:+.1f} ms",
            ),
        ]
        for label, met, value in checks:
            lines.append(f"{result['subject']:<9}{label:<50}{value:>28}  {'met' if met else 'MISSED'}")
    return lines


def print_tables(results: list[dict]) -> None:
    print("\n1, 2a: decode tokens/s (batch of equal prompts, greedy)")
    print(
        f"{'subject':<9}{'batch':>6}{'single':>9}{'mixture':>9}{'vs ideal':>10}{'loop 1':>9}{'loop mix':>10}"
        f"{'vs loop':>9}"
    )
    for result in results:
        for row in result["rows"]:
            print(
                f"{result['subject']:<9}{row['batch']:>6}{row['vllm_single']:>9.1f}{row['vllm_mixture']:>9.1f}"
                f"{row['mixture_vs_ideal']:>10.2f}{row['loop_single']:>9.1f}{row['loop_mixture']:>10.1f}"
                f"{row['served_mixture_vs_loop']:>9.2f}"
            )
    print("\n2b: Poisson workload (requests/s over the run; latency from arrival to last token)")
    print(
        f"{'subject':<9}{'rate in':>8}{'server':>9}{'loop':>9}{'ratio':>8}{'p50 server':>12}{'p50 loop':>10}"
        f"{'p99 server':>12}{'p99 loop':>10}"
    )
    for result in results:
        serving = result["serving"]
        server, loop = serving["workload_server"], serving["workload_loop"]
        print(
            f"{result['subject']:<9}{serving['arrival_rate']:>8.2f}{server['requests_per_s']:>9.2f}"
            f"{loop['requests_per_s']:>9.2f}{server['requests_per_s'] / loop['requests_per_s']:>8.2f}"
            f"{server['latency_s']['p50']:>11.1f}s{loop['latency_s']['p50']:>9.1f}s"
            f"{server['latency_s']['p99']:>11.1f}s{loop['latency_s']['p99']:>9.1f}s"
        )
    print("\n3: HTTP layer, same streaming load (tokens/s; TTFT and inter-token latency in ms;")
    print("   unloaded TTFT: one 16-token prompt at a time, one token)")
    print(
        f"{'subject':<9}{'server':<12}{'tok/s':>8}{'TTFT p50':>10}{'TTFT p99':>10}{'ITL p50':>9}{'ITL p99':>9}"
        f"{'unloaded TTFT p50':>19}"
    )
    for result in results:
        for label, key in [("mpo-serve", "http_mpo"), ("vllm serve", "http_vllm")]:
            run = result["serving"][key]
            print(
                f"{result['subject']:<9}{label:<12}{run['tokens_per_s']:>8.1f}{run['ttft_ms']['p50']:>10.1f}"
                f"{run['ttft_ms']['p99']:>10.1f}{run['itl_ms']['p50']:>9.1f}{run['itl_ms']['p99']:>9.1f}"
                f"{run['unloaded_ttft_ms']['p50']:>19.1f}"
            )
    print("\n4: resident memory after the loads, all processes (GiB)")
    print(f"{'subject':<9}{'weights + KV':>14}{'mpo-serve':>11}{'ratio':>7}{'vllm serve':>12}")
    for result in results:
        memory = result["memory"]
        print(
            f"{result['subject']:<9}{memory['weights_plus_kv_bytes'] / 2**30:>14.2f}"
            f"{memory['server_rss_bytes'] / 2**30:>11.2f}{memory['ratio']:>7.2f}"
            f"{memory['vllm_serve_rss_bytes'] / 2**30:>12.2f}"
        )


def chart(results: list[dict], path: Path) -> None:
    """Top: decode tokens/s per batch size. Bottom: each goal's ratio against its target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, len(results), figsize=(6 * len(results), 8), squeeze=False)
    for column, result in enumerate(results):
        axis = axes[0][column]
        batches = [str(r["batch"]) for r in result["rows"]]
        series = ["vllm_single", "vllm_mixture", "loop_single", "loop_mixture"]
        width = 0.2
        for i, key in enumerate(series):
            offsets = [x + (i - 1.5) * width for x in range(len(batches))]
            axis.bar(offsets, [r[key] for r in result["rows"]], width, label=key)
        axis.set_xticks(range(len(batches)), batches)
        axis.set_xlabel("batch")
        axis.set_ylabel("decode tokens/s")
        axis.set_title(f"{result['subject']} ({result['components']} components)")
        axis.legend()

        axis = axes[1][column]
        d = derived(result)
        names = ["mixture_vs_ideal", "served_vs_loop_b32", "workload_requests_ratio", "http_throughput_ratio"]
        labels = ["mixture / ideal", "served / loop b32", "workload req/s", "HTTP vs vllm"]
        axis.bar(labels, [d[n] for n in names], color="tab:blue", label="measured")
        axis.scatter(labels, [GOALS[n] for n in names], color="tab:red", marker="_", s=900, label="goal", zorder=3)
        axis.set_ylabel("ratio")
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
