"""Where the shared base meets vLLM's layers: stacked rows through one base layer, each
component's delta on its own rows, and each component's attention on its own KV cache.

From the fork (the first layer any component adapts, mixer.lora.model) on, a step of the
shared-base mixture runs the base's layers once on the step's rows repeated for each
component it runs (STEP.forwarded, in that order): rows [i*T, (i+1)*T) belong to the i-th.
Everything that has no per-component state (norms, rotary embeddings, activations, the base
linear layers' own matmuls) then runs once on all rows; two things are per component:

- StackedLoRAMethod replaces a base linear layer's quant method (vLLM calls it for the layer's
  matmul, before a row-parallel layer's all-reduce): the base matmul over every row once with
  the components' low-rank deltas (mixer.lora.factors) folded in, each on its own rows: one
  down matmul for all of them (StackedDeltas), whose masked result extends the base matmul's
  input, the B's extending its weight, a step of many small calls being bound by their
  overhead at low batch. Inside the base matmul, a row-parallel rank's partial delta is
  summed with its partial output before the all-reduce.
- ComponentAttention replaces a layer's attention module and hands each component's rows to
  that component's own vLLM Attention layer, whose name (its prefix, e.g.
  'positive.model.layers.3.self_attn.attn') binds it to its own KV cache.

Each component's Attention is built with exactly the arguments the base model used for its
own (recorded while the base is built), under the component's prefix.

On CPU the deltas' matmuls use the GEMM vLLM's own CPU linear layers use (oneDNN, prepacked):
its result for a row does not depend on how many rows share the call, so what a request is
served does not depend on what else runs in its step. torch's (MKL) switches kernels at 8
rows and changes the last bits of a row's delta with the batch. torch's is what CUDA runs;
MPO_DELTA_MATMUL=torch forces it on CPU, so that the exactness tests run that path too.
"""

from contextlib import contextmanager
from typing import cast

import torch
from torch import nn
from vllm.model_executor.layers.attention import Attention
from vllm.model_executor.layers.linear import (
    MergedColumnParallelLinear,
    QKVParallelLinear,
    RowParallelLinear,
    UnquantizedLinearMethod,
)
from vllm.platforms import current_platform

from mixer.lora import compiled
from mixer.lora.factors import FUSED, Layout, LowRankDelta, Shard, StackedDeltas, torch_matmul
from mixer.step_state import STEP


def engine_matmul(matrix: torch.Tensor):
    """x @ matrix (in, out) with vLLM's CPU GEMM where it has one (as its linear layers do,
    falling back to torch where oneDNN cannot build the primitive), else torch's: the path CUDA
    takes, which MPO_DELTA_MATMUL=torch forces on CPU so that tests run it."""
    from vllm import _custom_ops as ops

    if current_platform.is_cpu() and ops._supports_onednn:
        try:
            handler = ops.create_onednn_mm(matrix, 32)
        except RuntimeError:
            return torch_matmul(matrix)
        return lambda x: ops.onednn_mm(handler, x, None)
    return torch_matmul(matrix)


class StackedLoRAMethod(UnquantizedLinearMethod):
    """The base layer's matmul once over all stacked rows, each component's delta on its own
    rows folded into it: the base weight W (out, in) gets the components' stacked B's as extra
    input rows once its weights are loaded, and every step multiplies [x | x @ A's, masked to
    each row's own component] by it (StackedDeltas). With per-component deltas (by component
    index; components without one get the base alone: MPO_DELTA_GEMMS=per_component, the
    earlier path) the base runs alone and each component the step runs adds its own two
    matmuls."""

    def __init__(self, deltas: StackedDeltas | dict[int, LowRankDelta], up: torch.Tensor | None = None) -> None:
        super().__init__()
        self.deltas = deltas
        self.up = up  # the stacked deltas' B's, until they are in the weight

    def process_weights_after_loading(self, layer: nn.Module) -> None:
        if isinstance(self.deltas, StackedDeltas) and self.up is not None:
            layer.weight.data = self.deltas.extend(layer.weight.data, self.up)
            self.up = None
        super().process_weights_after_loading(layer)  # on CPU: the engine's GEMM on W extended

    def apply(self, layer: nn.Module, x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        if torch.compiler.is_compiling():  # the rows' components are the graph's input (mixer.lora.compiled)
            stacked = cast(StackedDeltas, self.deltas)  # the model refuses compiling per-component deltas
            hidden = stacked.hidden_by_rows(x, STEP.rows)
            return super().apply(layer, torch.cat([x, hidden], dim=1), bias)
        run = STEP.running()
        if isinstance(self.deltas, StackedDeltas):
            return super().apply(layer, torch.cat([x, self.deltas.hidden(x, run)], dim=1), bias)
        y = super().apply(layer, x, bias)
        rows = x.shape[0] // len(run)
        for block, component in enumerate(run):
            delta = self.deltas.get(component)
            if delta is not None:
                delta.add_to(y[block * rows : (block + 1) * rows], x[block * rows : (block + 1) * rows])
        return y


class ComponentAttention(nn.Module):
    """Each component's rows attend through that component's Attention layer (its own KV).

    `per_component[k]` is component k's layer; the reference's is the base model's own and is
    kept here as a submodule (`reference`); the others are registered in their components'
    own module trees, so every Attention is in the model exactly once."""

    def __init__(self, per_component: list[Attention]) -> None:
        super().__init__()
        self.reference = per_component[0]
        self.per_component = tuple(per_component)  # a tuple: not registered again
        self.width = self.reference.num_heads * self.reference.head_size_v
        compiled.ATTENTION[self.reference.layer_name] = self.by_component

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, **kwargs) -> torch.Tensor:
        if torch.compiler.is_compiling():  # the step's components are read when the op runs
            return compiled.attention_in_graph(query, key, value, self.width, self.reference.layer_name)
        return self.by_component(query, key, value, **kwargs)

    def by_component(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, **kwargs) -> torch.Tensor:
        run = STEP.running()
        if len(run) == 1:
            return self.per_component[run[0]](query, key, value, **kwargs)
        chunks = zip(run, query.chunk(len(run)), key.chunk(len(run)), value.chunk(len(run)), strict=True)
        return torch.cat([self.per_component[c](q, k, v, **kwargs) for c, q, k, v in chunks])


@contextmanager
def attention_recipes():
    """Record the arguments of every Attention built inside, by layer name, so that another
    component's layer can be built exactly alike (clone_attention)."""
    recipes: dict[str, tuple[tuple, dict]] = {}
    original = Attention.__init__

    def recording(self, *args, **kwargs):
        original(self, *args, **kwargs)
        if type(self) is Attention:
            recipes[self.layer_name] = (args, dict(kwargs))

    Attention.__init__ = recording
    try:
        yield recipes
    finally:
        Attention.__init__ = original


def clone_attention(recipe: tuple[tuple, dict], prefix: str) -> Attention:
    """A new Attention layer like the recorded one, under `prefix` (its own KV cache)."""
    args, kwargs = recipe
    if "prefix" not in kwargs:
        raise RuntimeError("the base model built its attention without a prefix keyword; cannot clone it")
    return Attention(*args, **(kwargs | {"prefix": prefix}))


def layout(layer: nn.Module, fused: str) -> Layout:
    """This rank's part of the fused base layer `fused` (a key of FUSED), read from the layer
    as vLLM split it."""
    rank = layer.tp_rank
    if isinstance(layer, QKVParallelLinear):
        q = layer.num_heads * layer.head_size
        k = layer.num_kv_heads * layer.head_size
        v = layer.num_kv_heads * layer.v_head_size
        kv_rank = rank // layer.num_kv_head_replicas
        outputs = {
            "q_proj": Shard(0, q, rank * q),
            "k_proj": Shard(q, k, kv_rank * k),
            "v_proj": Shard(q + k, v, kv_rank * v),
        }
        return Layout(outputs)
    if isinstance(layer, MergedColumnParallelLinear):
        sizes = [size // layer.tp_size for size in layer.output_sizes]
        offsets = [sum(sizes[:i]) for i in range(len(sizes))]
        names = FUSED[fused]
        return Layout({name: Shard(offsets[i], sizes[i], rank * sizes[i]) for i, name in enumerate(names)})
    if isinstance(layer, RowParallelLinear):
        local = layer.input_size_per_partition
        return Layout({FUSED[fused][0]: Shard(0, layer.output_size, 0)}, inputs=(rank * local, local))
    raise RuntimeError(f"{type(layer).__name__} at {layer.prefix!r} is not a layer the shared base adapts")
