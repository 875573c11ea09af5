"""One adapted base layer's step with its deltas' up GEMM folded into the base GEMM, against
the up GEMM apart, side by side in one run, at one policy's, three policies' and the
reference's own rows.

    .venv/bin/python -m bench.delta_fold [--rows 1 3 8] [--shapes smollm2|8b]

Both ways compute every component's down columns (x @ the A's side by side) and mask each
row to its own component's; then either "apart": the base GEMM, the up GEMM (the B's
stacked) and an add into the base's outputs, or "folded": one base GEMM on [x | masked
columns] with the B's appended to the base weight (mixer.lora.layers.StackedLoRAMethod).
"reference alone" is a step that runs no component with a delta: apart skips the deltas, folded
multiplies zeros by the extension. The matmuls are the ones the server uses
(mixer.lora.layers.engine_matmul: oneDNN on CPU, torch's elsewhere), on the GPU where there is
one, in bfloat16 there (float32 on CPU, as the demo serves). Prints microseconds per layer,
best of 3 timed loops, and folded / apart. The docs/benchmarks.md section of issue 36
has a run.
"""

import argparse
import time

import torch

from mixer.lora.layers import engine_matmul

# (fused layer, inputs, the three components' ranks summed, outputs)
SHAPES = {
    "smollm2": [("qkv", 576, 144, 960), ("o", 576, 48, 576), ("gate_up", 576, 96, 3072), ("down", 1536, 48, 576)],
    "8b": [("qkv", 4096, 144, 6144), ("o", 4096, 48, 4096), ("gate_up", 4096, 96, 28672), ("down", 14336, 48, 4096)],
}
COMPONENTS = 3
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
DTYPE = torch.bfloat16 if DEVICE == "cuda" else torch.float32
REQUESTS = (("one policy", 1, True), ("3 policies", 3, True), ("reference alone", 1, False))  # (label, blocks, adapted)


def microseconds(step, calls: int) -> float:
    for _ in range(calls // 10):
        step()
    best = []
    for _ in range(3):
        synchronize()
        start = time.perf_counter()
        for _ in range(calls):
            step()
        synchronize()
        best.append((time.perf_counter() - start) / calls * 1e6)
    return min(best)


def synchronize() -> None:
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def randn(*shape: int, scale: float = 1.0) -> torch.Tensor:
    return (torch.randn(*shape) * scale).to(DEVICE, DTYPE)


def steps(inputs: int, rank: int, outputs: int, rows: int, blocks: int, adapted: bool):
    """(apart, folded) for one layer: `blocks` components' rows of `rows` tokens each."""
    weight = randn(outputs, inputs, scale=0.05)  # (out, in), as vLLM holds it
    down_matrix, up_matrix = randn(inputs, rank, scale=0.05), randn(rank, outputs, scale=0.05)
    base, down, up = engine_matmul(weight.t().contiguous()), engine_matmul(down_matrix), engine_matmul(up_matrix)
    extended = engine_matmul(torch.cat([weight, up_matrix.t()], dim=1).t().contiguous())
    x = randn(blocks * rows, inputs)
    mask = torch.zeros(blocks, 1, rank, device=DEVICE, dtype=DTYPE)
    for block in range(blocks):  # each block its own component's columns
        start = block * rank // COMPONENTS
        mask[block, :, start : start + rank // COMPONENTS] = 1

    def apart():
        y = base(x)
        if adapted:
            hidden = down(x)
            hidden.view(blocks, -1, rank).mul_(mask)
            y += up(hidden)
        return y

    def folded():
        if adapted:
            hidden = down(x)
            hidden.view(blocks, -1, rank).mul_(mask)
        else:
            hidden = x.new_zeros(x.shape[0], rank)
        return extended(torch.cat([x, hidden], dim=1))

    return apart, folded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1, 3, 8])
    parser.add_argument("--shapes", choices=sorted(SHAPES), default="smollm2")
    args = parser.parse_args()
    torch.manual_seed(0)
    calls = 2000 if args.shapes == "smollm2" or DEVICE == "cuda" else 100
    print(f"{args.shapes} shapes on {DEVICE} in {DTYPE}, microseconds per layer (best of 3 loops of {calls})")
    print(f"{'layer':<9}{'rows':>5}  {'requests':<18}{'apart':>8}{'folded':>8}{'ratio':>7}")
    for name, inputs, rank, outputs in SHAPES[args.shapes]:
        for rows in args.rows:
            for label, blocks, adapted in REQUESTS:
                apart, folded = steps(inputs, rank, outputs, rows, blocks, adapted)
                a, f = microseconds(apart, calls), microseconds(folded, calls)
                print(f"{name:<9}{rows:>5}  {label:<18}{a:>8.1f}{f:>8.1f}{f / a:>7.2f}")


if __name__ == "__main__":
    main()
