"""A component's low-rank delta on one fused base layer of one tensor-parallel rank (pure torch).

vLLM fuses projections (q/k/v into qkv_proj, gate/up into gate_up_proj) and splits layers
across ranks; an adapter has factors per projection, whole. For each base layer this module
turns the factors of every projection it fuses (of one adapter, or of a soup's several) into
one delta on this rank's slice of the layer, split exactly as the base weight is:

- column-parallel layers (qkv_proj, gate_up_proj) hold a slice of each projection's outputs:
  A whole, and the rows of B that produce this rank's outputs;
- row-parallel layers (o_proj, down_proj) hold a slice of the inputs: the columns of A that
  read this rank's inputs, and B whole. The rank's delta is then partial, like its base
  output, and the layer's own all-reduce sums both.

The A's of one layer are concatenated into one `down` matrix (one matmul per component);
each projection keeps its own `up` (its B, scaled), so a delta holds exactly the adapter's
factors, never zero blocks. peft's scaling and a soup's weight are folded into `up` in fp32
before the cast to the serving dtype. The matmuls themselves are the caller's choice
(`matmul`): torch's by default, the engine's CPU GEMM when served (mixer.lora.layers).
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch

# A matmul by a fixed matrix: built from the matrix (in, out), then called on x (T, in).
Matmul = Callable[[torch.Tensor], Callable[[torch.Tensor], torch.Tensor]]


def torch_matmul(matrix: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda x: x @ matrix


# Each vLLM base layer the shared path adapts, and the projections (peft's names) it fuses, in order.
FUSED = {
    "qkv_proj": ("q_proj", "k_proj", "v_proj"),
    "o_proj": ("o_proj",),
    "gate_up_proj": ("gate_proj", "up_proj"),
    "down_proj": ("down_proj",),
}


@dataclass(frozen=True)
class Shard:
    """Where one projection's outputs are in this rank's output of the fused layer: `size`
    local outputs from `offset`, which are the projection's outputs from `start` on."""

    offset: int
    size: int
    start: int


@dataclass(frozen=True)
class Layout:
    """This rank's part of a fused base layer: each projection's outputs, and for a
    row-parallel layer the (start, size) of the input columns this rank reads."""

    outputs: dict[str, Shard]
    inputs: tuple[int, int] | None = None


@dataclass(frozen=True)
class Factor:
    """One projection's LoRA factors, A (r, in) and B (out, r), times `scale` (peft's scaling
    times the soup weight, 1 for a plain adapter)."""

    projection: str
    a: torch.Tensor
    b: torch.Tensor
    scale: float


@dataclass(frozen=True)
class Up:
    """Columns [first, last) of x A^T, times one projection's scaled B^T (r, size), add to
    the outputs [offset, offset + size)."""

    first: int
    last: int
    offset: int
    size: int
    times: Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class LowRankDelta:
    """delta(x) = (x @ down) @ up_k, added to each projection's local outputs."""

    down: Callable[[torch.Tensor], torch.Tensor]  # x (T, in on this rank) -> (T, total rank)
    rank: int
    ups: tuple[Up, ...]

    def add_to(self, y: torch.Tensor, x: torch.Tensor) -> None:
        """y += delta(x), in place: x (T, in), y (T, out) on this rank."""
        u = self.down(x)
        for up in self.ups:
            part = u if up.last - up.first == self.rank else u[:, up.first : up.last].contiguous()
            y[:, up.offset : up.offset + up.size] += up.times(part)


def fuse(
    factors: list[Factor],
    layout: Layout,
    dtype: torch.dtype,
    device: torch.device | str,
    matmul: Matmul = torch_matmul,
) -> LowRankDelta:
    """One delta for a fused layer on this rank from its projections' factors (any subset of
    the projections it fuses, any ranks; several factors of one projection add up)."""
    downs, ups, first = [], [], 0
    for factor in factors:
        shard = layout.outputs[factor.projection]
        a = factor.a.float()
        if layout.inputs is not None:
            start, size = layout.inputs
            a = a[:, start : start + size]
        b = factor.b.float()[shard.start : shard.start + shard.size] * factor.scale  # (local out, r)
        rank = a.shape[0]
        downs.append(a)
        up = b.t().contiguous().to(dtype=dtype, device=device)  # (r, local out)
        ups.append(Up(first, first + rank, shard.offset, shard.size, matmul(up)))
        first += rank
    down = torch.cat(downs).t().contiguous().to(dtype=dtype, device=device)  # (in, total rank)
    return LowRankDelta(matmul(down), first, tuple(ups))
