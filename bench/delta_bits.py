"""Whether the engine's CPU GEMM (oneDNN, as the shared base's deltas use it) gives a
component's delta the same bits when the stacked matrices hold other components beside it.

    .venv/bin/python -m bench.delta_bits

For the down GEMM (x @ A's side by side) it compares a component's columns from the stacked
matrix with those of its own matrix; for the up GEMM (B's stacked) it compares the stacked
matrix on zero-padded input with the component's own rows. A step that reads only its own
components' factors (cheaper for one policy) is exact only where both hold at every batch
size (docs/benchmarks.md, issue 36).
"""

import torch

from mixer.lora.layers import engine_matmul

# (layer, inputs, one component's rank, outputs): SmolLM2-135M's and Llama-3-8B's
SHAPES = [
    ("SmolLM2 qkv", 576, 48, 960),
    ("SmolLM2 gate_up", 576, 32, 3072),
    ("SmolLM2 down", 1536, 16, 576),
    ("8B qkv", 4096, 48, 6144),
    ("8B gate_up", 4096, 32, 28672),
    ("8B down", 14336, 16, 4096),
]
ROWS = [1, 2, 3, 8, 17, 64]
COMPONENTS = 3


def mismatches(inputs: int, rank: int, width: int) -> tuple[list[int], list[int]]:
    """The batch sizes at which some component's down columns, and its up, change bits."""
    downs = [torch.randn(inputs, rank) * 0.05 for _ in range(COMPONENTS)]
    ups = [torch.randn(rank, width) * 0.05 for _ in range(COMPONENTS)]
    down_all, up_all = engine_matmul(torch.cat(downs, dim=1)), engine_matmul(torch.cat(ups))
    alone = [(engine_matmul(d), engine_matmul(u)) for d, u in zip(downs, ups, strict=True)]
    down_rows, up_rows = [], []
    for rows in ROWS:
        x = torch.randn(rows, inputs)
        stacked = down_all(x)
        for c, (down, up) in enumerate(alone):
            hidden = down(x)
            if not torch.equal(stacked[:, c * rank : (c + 1) * rank], hidden):
                down_rows.append(rows)
            padded = torch.nn.functional.pad(hidden, (c * rank, (COMPONENTS - 1 - c) * rank))
            if not torch.equal(up_all(padded), up(hidden)):
                up_rows.append(rows)
    return sorted(set(down_rows)), sorted(set(up_rows))


def main() -> None:
    torch.manual_seed(0)
    print(f"batch sizes tried: {ROWS}; where a component's bits change with the others beside it:")
    print(f"{'layer':<18}{'down':<24}{'up'}")
    for name, inputs, rank, width in SHAPES:
        down, up = mismatches(inputs, rank, width)
        print(f"{name:<18}{str(down or 'none'):<24}{up or 'none'}")


if __name__ == "__main__":
    main()
