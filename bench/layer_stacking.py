"""One decoder layer of an 8B model (plain torch): K LoRA components stacked through one base
vs one forward per component, against the device's memory bandwidth.

    .venv/bin/python -m bench.layer_stacking                        # CUDA, bf16, Llama-3-8B shapes
    .venv/bin/python -m bench.layer_stacking --device cpu --hidden 512 --mlp 1536 --heads 8 --kv-heads 2

The shared base's claim for GPUs, measured rather than argued: where decoding reads weights
(small batches), K adapters stacked through one base cost about one model. Per batch size B
and component count K, both ways of running the layer's projections (qkv, o, gate/up with
SiLU, down, and the two RMS norms) on B decode rows of each component:
  separate  one forward per component, each with its own (merged) weights: K reads;
  stacked   the base's weights once over the K*B stacked rows, plus each component's rank-r
            delta (x A^T) B^T on its own rows (what mixer.lora.layers does in the engine).
Attention is left out: it runs per component in both ways (each has its own KV). On CUDA each
variant is captured in a CUDA graph (no launch overhead, as vLLM serves) and timed with
events; the table gives each time, stacked / separate, and the stacked layer's weight bytes
per second against the device's copy bandwidth, measured here too.
"""

import argparse
import statistics
import time

import torch


def rms_norm(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return x * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + 1e-5).to(x.dtype) * weight


class Layer:
    """A decoder layer's projections: qkv, o, gate_up, down (weights as (out, in))."""

    def __init__(self, args, device, dtype, generator) -> None:
        q, kv = args.heads * args.head_dim, args.kv_heads * args.head_dim
        shapes = {"qkv": (q + 2 * kv, args.hidden), "o": (args.hidden, q), "gate_up": (2 * args.mlp, args.hidden)}
        shapes["down"] = (args.hidden, args.mlp)
        self.q = q
        self.weights = {
            name: (torch.randn(*shape, generator=generator, device=device) * 0.02).to(dtype)
            for name, shape in shapes.items()
        }
        self.norms = [torch.ones(args.hidden, device=device, dtype=dtype) for _ in range(2)]

    def nbytes(self) -> int:
        return sum(w.nbytes for w in self.weights.values())


def deltas(layer: Layer, rank: int, generator) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """A component's (A^T, B^T) per projection: (in, r) and (r, out)."""
    return {
        name: (
            (torch.randn(w.shape[1], rank, generator=generator, device=w.device) * 0.02).to(w.dtype),
            (torch.randn(rank, w.shape[0], generator=generator, device=w.device) * 0.02).to(w.dtype),
        )
        for name, w in layer.weights.items()
    }


def forward(layer: Layer, x: torch.Tensor, blocks: list[dict] | None = None) -> torch.Tensor:
    """The layer's projections on x (rows, hidden); with `blocks`, x holds len(blocks) equal
    row blocks and each block's delta is added to its rows after each base matmul."""

    def project(name: str, h: torch.Tensor) -> torch.Tensor:
        y = h @ layer.weights[name].t()
        if blocks:
            rows = h.shape[0] // len(blocks)
            for i, delta in enumerate(blocks):
                down, up = delta[name]
                part = slice(i * rows, (i + 1) * rows)
                y[part] += (h[part] @ down) @ up
        return y

    h = rms_norm(x, layer.norms[0])
    qkv = project("qkv", h)
    attended = qkv[:, : layer.q]  # attention itself is per component in both ways: left out
    x = x + project("o", attended.contiguous())
    h = rms_norm(x, layer.norms[1])
    gate, up = project("gate_up", h).chunk(2, dim=-1)
    return x + project("down", torch.nn.functional.silu(gate) * up)


def timed(run, device: torch.device, repeats: int) -> float:
    """Median seconds of run() (a CUDA graph replay on CUDA)."""
    if device.type == "cuda":
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(3):
                run()
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            run()
        times = []
        for _ in range(repeats):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            graph.replay()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        return statistics.median(times)
    for _ in range(3):
        run()
    times = []
    for _ in range(repeats):
        begin = time.perf_counter()
        run()
        times.append(time.perf_counter() - begin)
    return statistics.median(times)


def copy_bandwidth(device: torch.device, dtype: torch.dtype, nbytes: int) -> float:
    """Bytes per second the device moves in a large copy (read + write)."""
    source = torch.empty(nbytes // torch.finfo(dtype).bits * 8, device=device, dtype=dtype)
    target = torch.empty_like(source)
    seconds = timed(lambda: target.copy_(source), device, 20)
    return 2 * source.nbytes / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default=None, help="default: bfloat16 on CUDA, float32 on CPU")
    parser.add_argument("--hidden", type=int, default=4096)
    parser.add_argument("--mlp", type=int, default=14336)
    parser.add_argument("--heads", type=int, default=32)
    parser.add_argument("--kv-heads", type=int, default=8)
    parser.add_argument("--head-dim", type=int, default=128)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64])
    parser.add_argument("--components", type=int, nargs="+", default=[1, 2, 3, 4])
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype or ("bfloat16" if device.type == "cuda" else "float32"))
    generator = torch.Generator(device=device).manual_seed(0)
    most = max(args.components)
    base = Layer(args, device, dtype, generator)
    merged = [Layer(args, device, dtype, generator) for _ in range(most)]  # each component's own weights
    factors = [deltas(base, args.rank, generator) for _ in range(most)]
    bandwidth = copy_bandwidth(device, dtype, 1 << 30)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"{name}, {dtype}, hidden {args.hidden}, MLP {args.mlp}, rank {args.rank}")
    print(f"one layer's projections: {base.nbytes() / 2**20:.0f} MiB; copy bandwidth {bandwidth / 1e9:.0f} GB/s")
    columns = ("batch", 6), ("K", 3), ("separate", 12), ("stacked", 12), ("stacked/separate", 18)
    columns += ("stacked GB/s", 14), ("of copy", 9)
    print("".join(f"{title:>{width}}" for title, width in columns))
    with torch.inference_mode():
        for batch in args.batches:
            for k in args.components:
                x = torch.randn(batch, args.hidden, generator=generator, device=device).to(dtype)
                stacked_x = x.repeat(k, 1)
                separate = timed(lambda: [forward(merged[i], x) for i in range(k)], device, args.repeats)  # noqa: B023
                stacked = timed(lambda: forward(base, stacked_x, factors[:k]), device, args.repeats)  # noqa: B023
                rate = base.nbytes() / stacked
                print(
                    f"{batch:>6}{k:>3}{separate * 1e6:>10.0f}us{stacked * 1e6:>10.0f}us{stacked / separate:>18.2f}"
                    f"{rate / 1e9:>14.0f}{rate / bandwidth:>8.0%}"
                )


if __name__ == "__main__":
    main()
