"""The benchmark's tables, its verdict against the goals, and its chart."""

from pathlib import Path

from bench.rates import Figure, format_figure
from bench.throughput import KINDS

GOALS = {
    "one_policy_vs_ideal": 0.9,  # batches 8 and 32: a one-policy request vs a plain model
    "two_policy_vs_ideal": 0.9,  # batches 8 and 32: the default mixture vs single / 2
    "served_vs_loop_b32": 1.2,
    "workload_requests_ratio": 3.0,  # and p50 latency no worse than the loop's
    "http_throughput_ratio": 0.95,
    "ttft_overhead_ms": 5.0,
}
# The shared base against the plain model (issue 18): (label, kind, batches, goal).
SHARED_GOALS = [
    ("default mixture >= 0.8 of single at batch 1", "two_policy", (1,), 0.8),
    ("default mixture >= 0.65 of single at batch 8", "two_policy", (8,), 0.65),
    ("one policy >= 0.9 of single (b 1, 8, 32)", "one_policy", (1, 8, 32), 0.9),
    ("fit traffic (all) >= 0.6 of single at batch 1", "all", (1,), 0.6),
]
SHARED_MEMORY_SLACK = 0.10  # of the reference's weight bytes
JUDGED_BATCHES = (8, 32)


def _worst(rows: list[dict], key: str, batches: tuple[int, ...] = JUDGED_BATCHES) -> dict:
    """The judged batches' figures combined so that a goal holds only if it holds for each:
    the lowest median, the lowest low, the lowest high; reliable if every one is."""
    figures = [r[key] for r in rows if r["batch"] in batches]
    worst = {part: min(f[part] for f in figures) for part in ("median", "low", "high")}
    worst["reliable"] = all(f["reliable"] for f in figures)
    worst["spread"] = max(f["spread"] for f in figures)
    return worst


def derived(result: dict) -> dict:
    """The figures the goals are stated in, for one subject ({median, low, high, spread,
    reliable} where they come from repeated rounds)."""
    serving = result["serving"]
    server, loop = serving["workload_server"], serving["workload_loop"]
    mpo, vllm = serving["http_mpo"], serving["http_vllm"]
    default = result["modes"][0]
    return {
        "one_policy_vs_ideal": _worst(result["rows"], f"one_policy_{default}_vs_ideal"),
        "two_policy_vs_ideal": _worst(result["rows"], f"two_policy_{default}_vs_ideal"),
        "served_vs_loop_b32": next(r["served_vs_loop"] for r in result["rows"] if r["batch"] == 32),
        "workload_requests_ratio": server["requests_per_s"] / loop["requests_per_s"],
        "workload_p50_server_s": server["latency_s"]["p50"],
        "workload_p50_loop_s": loop["latency_s"]["p50"],
        "http_throughput_ratio": serving["http_ratio"],
        "ttft_overhead_ms": mpo["unloaded_ttft_ms"]["p50"] - vllm["unloaded_ttft_ms"]["p50"],
    }


def _fig(value: dict, digits: int = 2) -> str:
    return format_figure(Figure(value["median"], value["low"], value["high"]), digits, value["reliable"])


def _verdict(value: dict, goal: float) -> str:
    """met / MISSED on the median of a figure whose rounds agree; for one whose spread is over
    the limit, only what every round says (all above the goal: met, all below: MISSED), else
    unjudged."""
    if value["reliable"]:
        return "met" if value["median"] >= goal else "MISSED"
    if value["low"] >= goal:
        return "met (every round)"
    if value["high"] < goal:
        return "MISSED (every round)"
    return "unjudged (spread)"


def shared_checks(result: dict) -> list[tuple[str, str, str]]:
    """The shared base's goals: its rates against the plain model, and its memory."""
    if "shared" not in result["modes"]:
        return []
    checks = []
    for label, kind, batches, goal in SHARED_GOALS:
        value = _worst(result["rows"], f"{kind}_shared_vs_single", batches)
        checks.append((f"4  shared: {label}", _fig(value), _verdict(value, goal)))
    footprint, held = result["footprint"], result["weight_bytes"]
    reference = held[result["reference"]]
    adapters = sum(size for name, size in held.items() if name != result["reference"])
    allowed = footprint["reference"]["engine_rss_bytes"] + SHARED_MEMORY_SLACK * reference + adapters
    used = footprint["2_shared"]["engine_rss_bytes"]
    checks.append(
        (
            "4  shared: ref + 2 adapters <= ref + 10% + adapters",
            f"{used / 2**30:.2f} vs {allowed / 2**30:.2f} GiB",
            "met" if used <= allowed else "MISSED",
        )
    )
    return checks


def goals(results: list[dict]) -> list[str]:
    """One line per subject and goal: met, MISSED or unjudged, with the measured value."""
    lines = ["\ngoals (ratios: median ±half their range over rounds; ? = spread over the limit)"]
    for result in results:
        d = derived(result)
        workload_met = (
            d["workload_requests_ratio"] >= GOALS["workload_requests_ratio"]
            and d["workload_p50_server_s"] <= d["workload_p50_loop_s"]
        )
        checks = [
            (
                "1  one-policy request >= 0.9 of single (b 8, 32)",
                _fig(d["one_policy_vs_ideal"]),
                _verdict(d["one_policy_vs_ideal"], GOALS["one_policy_vs_ideal"]),
            ),
            (
                "1  default mixture >= 0.9 of single/2 (b 8, 32)",
                _fig(d["two_policy_vs_ideal"]),
                _verdict(d["two_policy_vs_ideal"], GOALS["two_policy_vs_ideal"]),
            ),
            (
                "2a served mixture >= 1.2x loop at batch 32",
                _fig(d["served_vs_loop_b32"]),
                _verdict(d["served_vs_loop_b32"], GOALS["served_vs_loop_b32"]),
            ),
            (
                "2b >= 3x loop requests/s, p50 latency no worse",
                f"{d['workload_requests_ratio']:.2f}x, p50 {d['workload_p50_server_s']:.1f} s vs "
                f"{d['workload_p50_loop_s']:.1f} s",
                "met" if workload_met else "MISSED",
            ),
            (
                "3  HTTP >= 0.95 of vllm serve tokens/s",
                _fig(d["http_throughput_ratio"]),
                _verdict(d["http_throughput_ratio"], GOALS["http_throughput_ratio"]),
            ),
            (
                "3  TTFT p50 overhead <= 5 ms (one at a time)",
                f"{d['ttft_overhead_ms']:+.1f} ms",
                "met" if d["ttft_overhead_ms"] <= GOALS["ttft_overhead_ms"] else "MISSED",
            ),
        ]
        for label, value, verdict in checks + shared_checks(result):
            lines.append(f"{result['subject']:<9}{label:<60}{value:>28}  {verdict}")
    return lines


def print_tables(results: list[dict]) -> None:
    print("\n1, 2a: decode tokens/s (median ±half the range over rounds; ? = spread over the limit)")
    print("   single: the reference as a plain model; / single: the same round's ratio; / ideal: against")
    print("   single / the components the requests run; loop: the transformers loop; vs loop: the default")
    print("   mode's default mixture over the loop's")
    header = ["single", "one policy", "/ single", "/ ideal", "default mix", "/ single", "/ ideal"]
    header += ["fit (all)", "/ single", "/ ideal"]
    print(f"{'subject':<9}{'mode':<8}{'batch':>6}" + "".join(f"{h:>14}" for h in header))
    for result in results:
        for mode in result["modes"]:
            for row in result["rows"]:
                cells = [_fig(row["single"], 1)]
                for kind in KINDS:
                    key = f"{kind}_{mode}"
                    cells += [_fig(row[key], 1), _fig(row[f"{key}_vs_single"]), _fig(row[f"{key}_vs_ideal"])]
                print(f"{result['subject']:<9}{mode:<8}{row['batch']:>6}" + "".join(f"{c:>14}" for c in cells))
    print(f"\n{'subject':<9}{'batch':>6}{'loop 1':>14}{'loop mix':>14}{'vs loop':>14}")
    for result in results:
        for row in result["rows"]:
            cells = [_fig(row["loop_single"], 1), _fig(row["loop_mixture"], 1), _fig(row["served_vs_loop"])]
            print(f"{result['subject']:<9}{row['batch']:>6}" + "".join(f"{c:>14}" for c in cells))
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
    print("\n3: HTTP layer, same streaming load and weights (tokens/s over all rounds, then per round;")
    print("   TTFT and inter-token latency in ms; unloaded TTFT: one 16-token prompt at a time, one token)")
    print(
        f"{'subject':<9}{'server':<12}{'tok/s':>8}{'per round':>16}{'TTFT p50':>10}{'TTFT p99':>10}"
        f"{'ITL p50':>9}{'ITL p99':>9}"
        f"{'unloaded TTFT p50':>19}"
    )
    for result in results:
        for label, key in [("mpo-serve", "http_mpo"), ("vllm serve", "http_vllm")]:
            run = result["serving"][key]
            print(
                f"{result['subject']:<9}{label:<12}{run['tokens_per_s']:>8.1f}"
                f"{_fig(run['tokens_per_s_rounds'], 1):>16}{run['ttft_ms']['p50']:>10.1f}"
                f"{run['ttft_ms']['p99']:>10.1f}{run['itl_ms']['p50']:>9.1f}{run['itl_ms']['p99']:>9.1f}"
                f"{run['unloaded_ttft_ms']['p50']:>19.1f}"
            )
    print("\n4: resident memory after the loads, all processes (GiB), default mode")
    print(f"{'subject':<9}{'weights + KV':>14}{'mpo-serve':>11}{'ratio':>7}{'vllm serve':>12}")
    for result in results:
        memory = result["memory"]
        print(
            f"{result['subject']:<9}{memory['weights_plus_kv_bytes'] / 2**30:>14.2f}"
            f"{memory['server_rss_bytes'] / 2**30:>11.2f}{memory['ratio']:>7.2f}"
            f"{memory['vllm_serve_rss_bytes'] / 2**30:>12.2f}"
        )
    print("\n4: engine memory (EngineCore + worker, resident, GiB) and start-up (manifest load to first token)")
    print(f"{'subject':<9}{'configuration':<40}{'memory':>9}{'+ over ref':>12}{'start-up':>10}")
    labels = {
        "reference": "reference alone (plain model)",
        "1_shared": "ref + 1 adapter, shared",
        "2_shared": "ref + 2 adapters, shared",
        "1_merged": "ref + 1 adapter, merged (merge included)",
        "2_merged": "ref + 2 adapters, merged (merges included)",
        "2_merged_cached": "ref + 2 adapters, merged (merges cached)",
    }
    for result in results:
        footprint = result.get("footprint")
        if not footprint:
            continue
        alone = footprint["reference"]["engine_rss_bytes"]
        for key, label in labels.items():
            if key in footprint:
                run = footprint[key]
                extra = (run["engine_rss_bytes"] - alone) / 2**30
                print(
                    f"{result['subject']:<9}{label:<40}{run['engine_rss_bytes'] / 2**30:>9.2f}{extra:>+12.2f}"
                    f"{run['startup_s']:>9.1f}s"
                )


def chart(results: list[dict], path: Path) -> None:
    """Top: decode tokens/s per batch size (error bars: the range over rounds). Bottom: each
    goal's ratio against its target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, len(results), figsize=(8 * len(results), 8), squeeze=False)
    for column, result in enumerate(results):
        series = ["single", *(f"{kind}_{mode}" for mode in result["modes"] for kind in KINDS)]
        series += ["loop_single", "loop_mixture"]
        axis = axes[0][column]
        batches = [str(r["batch"]) for r in result["rows"]]
        width = 0.8 / len(series)
        for i, key in enumerate(series):
            offsets = [x + (i - (len(series) - 1) / 2) * width for x in range(len(batches))]
            values = [r[key] for r in result["rows"]]
            errors = [[v["median"] - v["low"] for v in values], [v["high"] - v["median"] for v in values]]
            axis.bar(offsets, [v["median"] for v in values], width, yerr=errors, label=key, capsize=2)
        axis.set_xticks(range(len(batches)), batches)
        axis.set_xlabel("batch")
        axis.set_ylabel("decode tokens/s")
        axis.set_yscale("log")
        axis.set_title(f"{result['subject']} ({result['components']} components)")
        axis.legend(fontsize=8)

        axis = axes[1][column]
        d = derived(result)
        names = ["one_policy_vs_ideal", "two_policy_vs_ideal", "served_vs_loop_b32", "http_throughput_ratio"]
        labels = ["one policy / ideal", "default mix / ideal", "served / loop b32", "HTTP vs vllm"]
        medians = [d[n]["median"] for n in names]
        errors = [[d[n]["median"] - d[n]["low"] for n in names], [d[n]["high"] - d[n]["median"] for n in names]]
        axis.bar(labels, medians, yerr=errors, color="tab:blue", label="measured", capsize=3)
        axis.bar(["workload req/s"], [d["workload_requests_ratio"]], color="tab:blue")
        targets = [GOALS[n] for n in names] + [GOALS["workload_requests_ratio"]]
        axis.scatter([*labels, "workload req/s"], targets, color="tab:red", marker="_", s=900, label="goal", zorder=3)
        axis.set_ylabel("ratio")
        axis.tick_params(axis="x", labelrotation=20)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
