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

A delta is two matmuls per component and layer, whatever it adapts: the A's of one layer
concatenated into one `down` matrix (in, R), and their B's (scaled) in one block matrix `up`
(R, span) over the outputs the adapted projections cover, zero where a factor does not feed a
projection (e.g. q's rank against k's outputs). The zeros cost a few multiplications and
change nothing in the sums (the served values were bit-identical to one matmul per
projection); one matmul per projection (small rank-16 GEMMs, each with its own call, slice
and add) was slower on the CPU at batch 1-32 (docs/benchmarks.md, "Two delta GEMMs per layer").
held_elements() counts what a delta holds, zeros included, for the weight bytes that
/admin/mixture reports. peft's scaling and a soup's weight are folded into `up` in fp32
before the cast to the serving dtype. The matmuls themselves are the caller's choice
(`matmul`): torch's by default, the engine's CPU GEMM when served (mixer.lora.layers).
"""

from collections.abc import Callable
from dataclasses import dataclass, field

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
FUSED_INTO = {projection: fused for fused, projections in FUSED.items() for projection in projections}


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
class LowRankDelta:
    """delta(x) = (x @ down) @ up, added to this rank's outputs [offset, offset + width)."""

    down: Callable[[torch.Tensor], torch.Tensor]  # x (T, in on this rank) -> (T, R)
    up: Callable[[torch.Tensor], torch.Tensor]  # (T, R) -> (T, width)
    rank: int  # R: the ranks of every factor, summed
    offset: int
    width: int

    def add_to(self, y: torch.Tensor, x: torch.Tensor) -> None:
        """y += delta(x), in place: x (T, in), y (T, out) on this rank."""
        y[:, self.offset : self.offset + self.width] += self.up(self.down(x))


def fuse(
    factors: list[Factor],
    layout: Layout,
    dtype: torch.dtype,
    device: torch.device | str,
    matmul: Matmul = torch_matmul,
) -> LowRankDelta:
    """One delta for a fused layer on this rank from its projections' factors (any subset of
    the projections it fuses, any ranks; several factors of one projection add up)."""
    down, up, offset = fused_matrices(factors, layout)
    as_served = {"dtype": dtype, "device": device}
    return LowRankDelta(matmul(down.to(**as_served)), matmul(up.to(**as_served)), down.shape[1], offset, up.shape[1])


def fused_matrices(factors: list[Factor], layout: Layout) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(down (in, R), up (R, width), offset) in fp32: fuse()'s delta before its matmuls."""
    shards = [layout.outputs[factor.projection] for factor in factors]
    offset, width = span(shards)
    rank = sum(factor.a.shape[0] for factor in factors)
    downs, up, first = [], torch.zeros(rank, width), 0
    for factor, shard in zip(factors, shards, strict=True):
        a = factor.a.float()
        if layout.inputs is not None:
            start, size = layout.inputs
            a = a[:, start : start + size]
        b = factor.b.float()[shard.start : shard.start + shard.size] * factor.scale  # (local out, r)
        downs.append(a)
        columns = shard.offset - offset
        up[first : first + a.shape[0], columns : columns + shard.size] = b.t()
        first += a.shape[0]
    return torch.cat(downs).t().contiguous(), up, offset


@dataclass(frozen=True)
class StackedDeltas:
    """Every component's delta on one fused layer for all of a step's rows, the up matmul folded
    into the base layer's own: `hidden()` is x @ down, with the A's of all components side by
    side (in, R_all), each row keeping only its own component's columns (`mask`, (components,
    R_all), 1 on them; a component without a delta has none); `up` (R_all, width, from
    stack()) holds the B's stacked, for the outputs [offset, offset + width) that any component
    adapts, and `extend()` appends it to the base weight as R_all more inputs. The base layer then
    multiplies [x | hidden] by [W; up] once (mixer.lora.layers.StackedLoRAMethod): per step
    and layer one down matmul and the base's, where a separate up matmul and its add were two
    more calls, a batch-1 step being bound by their overhead.

    The matrices hold every component of the mixture, whatever a step runs, so a row's delta
    depends on its own row alone (given a matmul whose result for a row does not depend on the
    others in the call): the zeros of the other components' columns add nothing, and a row of
    a component without a delta multiplies the extension by zeros."""

    down: Callable[[torch.Tensor], torch.Tensor]
    mask: torch.Tensor  # (components, R_all)
    offset: int
    width: int
    adapted: frozenset[int]  # the components with a delta here
    masks: dict[tuple[int, ...], torch.Tensor] = field(default_factory=dict, compare=False)  # by run

    @property
    def rank(self) -> int:
        return self.mask.shape[1]

    def extend(self, weight: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
        """The base weight (out, in), as vLLM holds it, with `up` (R_all, width) appended as
        R_all more inputs: (out, in + R_all), zero on the outputs no component adapts."""
        extension = weight.new_zeros(weight.shape[0], self.rank)
        extension[self.offset : self.offset + self.width] = up.t()
        return torch.cat([weight, extension], dim=1)

    def hidden(self, x: torch.Tensor, run: list[int]) -> torch.Tensor:
        """Each row's own component's down columns: x (A * T, in), the rows of run[i] at
        [i * T, (i + 1) * T) -> (A * T, R_all)."""
        if self.adapted.isdisjoint(run):
            return x.new_zeros(x.shape[0], self.rank)
        key = tuple(run)
        if key not in self.masks:
            self.masks[key] = self.mask[list(key)].unsqueeze(1)  # (A, 1, R_all)
        hidden = self.down(x)
        hidden.view(len(run), -1, self.rank).mul_(self.masks[key])
        return hidden

    def hidden_by_rows(self, x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """hidden() with the components given per row, rows (A * T,) of component indices: what
        a compiled graph runs, the step's components being its input (mixer.lora.compiled)."""
        return self.down(x) * self.mask[rows]


def stack(
    by_component: dict[int, list[Factor]],
    layout: Layout,
    components: int,
    dtype: torch.dtype,
    device: torch.device | str,
    matmul: Matmul = torch_matmul,
) -> tuple[StackedDeltas, torch.Tensor]:
    """StackedDeltas for one fused layer on this rank from each component's factors (by
    component index; `components` in all, those without factors get nothing), and their `up`
    (R_all, width), for StackedDeltas.extend()."""
    fused = {c: fused_matrices(factors, layout) for c, factors in sorted(by_component.items())}
    offset = min(o for _, up, o in fused.values())
    width = max(o + up.shape[1] for _, up, o in fused.values()) - offset
    rank = sum(down.shape[1] for down, _, _ in fused.values())
    ups, mask, first = torch.zeros(rank, width), torch.zeros(components, rank), 0
    for c, (down, up, o) in fused.items():
        r = down.shape[1]
        ups[first : first + r, o - offset : o - offset + up.shape[1]] = up
        mask[c, first : first + r] = 1
        first += r
    downs = torch.cat([down for down, _, _ in fused.values()], dim=1).contiguous()
    as_served = {"dtype": dtype, "device": device}
    deltas = StackedDeltas(matmul(downs.to(**as_served)), mask.to(**as_served), offset, width, frozenset(fused))
    return deltas, ups.to(**as_served)


def whole_layout(fused: str, sizes: dict[str, tuple[int, int]]) -> Layout:
    """The layout of fused layer `fused` on a single rank, from its projections' (out, in)."""
    outputs, offset = {}, 0
    for name in FUSED[fused]:
        outputs[name] = Shard(offset, sizes[name][0], 0)
        offset += sizes[name][0]
    return Layout(outputs)


def held_elements(ranks: list[tuple[str, int]], layout: Layout, inputs: int) -> int:
    """Elements of the delta fuse() builds from factors of these (projection, rank) on a layer
    of this layout reading `inputs` features: down (inputs, R) and up (R, span)."""
    _, width = span([layout.outputs[projection] for projection, _ in ranks])
    return sum(rank for _, rank in ranks) * (inputs + width)


def span(shards: list[Shard]) -> tuple[int, int]:
    """(offset, width) of the local outputs from the first shard's start to the last one's end."""
    offset = min(shard.offset for shard in shards)
    return offset, max(shard.offset + shard.size for shard in shards) - offset
