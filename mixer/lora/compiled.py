"""The shared base under vLLM's compilation: the forked layers as one compiled module, with the
step's components an input of the graph, never a constant in it.

A step runs only the components its requests need, and which ones changes from step to step.
vLLM traces a model once and drops the guards (CompilationMode.DYNAMO_TRACE_ONCE on CPU,
piecewise graphs replayed by CUDA graphs on GPU), so anything a trace reads from Python state
is frozen at the first step's value. Two things in the forked layers depend on the step's
components, and each reaches them without Python state in the graph:

- the deltas (mixer.lora.factors.StackedDeltas.hidden_by_rows) take each stacked row's
  component index as a tensor, `rows`, an argument of ForkedLayers.forward that vLLM marks
  dynamic like the token count;
- attention per component runs inside one custom op, `vllm::mpo_component_attention`, which
  reads the step's components when it runs, as vLLM's own attention op reads its metadata. It
  writes into an output the graph allocates (as `unified_attention_with_output` does), and the
  engine lists it among the splitting ops where CUDA graphs are captured (server.engine), so it
  always runs eagerly between the captured pieces.

Before the forked layers, stacking the rows (one copy per component, mixer.lora.model) stays
eager: the number of copies is the step's. Its results are copied into buffers that outlive
the step, because a captured CUDA graph reads its inputs from the addresses it was captured
with. CPU runs this same path, buffers included, so the tests exercise what a GPU runs.
"""

from collections.abc import Callable

import torch
from torch import nn
from vllm.compilation.decorators import support_torch_compile
from vllm.config import VllmConfig
from vllm.utils.torch_utils import direct_register_custom_op

from mixer import COMPONENT_ATTENTION_OP
from mixer.step_state import STEP

# Each forked layer's per-component attention, by the reference's attention layer name.
ATTENTION: dict[str, Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]] = {}


def component_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, output: torch.Tensor, layer_name: str
) -> None:
    output.copy_(ATTENTION[layer_name](query, key, value))


def component_attention_fake(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, output: torch.Tensor, layer_name: str
) -> None:
    return None


direct_register_custom_op(
    COMPONENT_ATTENTION_OP.split("::")[1],
    component_attention,
    mutates_args=["output"],
    fake_impl=component_attention_fake,
)


def attention_in_graph(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, width: int, layer_name: str):
    """How a traced graph calls a forked layer's attention: (T, width) out of the custom op."""
    output = torch.empty(query.shape[0], width, dtype=query.dtype, device=query.device)
    torch.ops.vllm.mpo_component_attention(query, key, value, output, layer_name)
    return output


@support_torch_compile(dynamic_arg_dims={"hidden": 0, "residual": 0, "positions": 0, "rows": 0})
class ForkedLayers(nn.Module):
    """The base's layers from the fork on and its final norm, over the step's stacked rows.

    The layers stay registered where the base has them (their weights load there); this holds
    them in a tuple, so nothing is registered twice."""

    def __init__(self, *, vllm_config: VllmConfig, prefix: str = "", layers: tuple = (), norm=None) -> None:
        super().__init__()
        self.layers = tuple(layers)
        self.norm_layer = (norm,)
        self.inputs: dict[str, torch.Tensor] = {}

    def forward(
        self,
        hidden: torch.Tensor,
        residual: torch.Tensor | None,
        positions: torch.Tensor,
        rows: torch.Tensor | None,
    ) -> torch.Tensor:
        """The forked layers and the norm; `rows` (each row's component) only where compiled."""
        STEP.rows = rows
        for layer in self.layers:
            hidden, residual = layer(positions, hidden, residual)
        hidden, _ = self.norm_layer[0](hidden, residual)
        return hidden

    def run(self, hidden: torch.Tensor, residual: torch.Tensor | None, positions: torch.Tensor, run: list[int]):
        """forward() on copies of its inputs in step-outliving buffers, rows built from the run:
        hidden (A * T, d), the rows of run[i] at [i * T, (i + 1) * T)."""
        rows = torch.tensor(run, device=positions.device).repeat_interleave(positions.shape[0] // len(run))
        given = {"hidden": hidden, "residual": residual, "positions": positions, "rows": rows}
        kept = {name: None if tensor is None else self.kept(name, tensor) for name, tensor in given.items()}
        return self(**kept)

    def kept(self, name: str, tensor: torch.Tensor) -> torch.Tensor:
        """`tensor` copied into the front of this input's buffer (grown when a step needs more)."""
        buffer = self.inputs.get(name)
        if buffer is None or buffer.shape[0] < tensor.shape[0] or buffer.shape[1:] != tensor.shape[1:]:
            buffer = self.inputs[name] = torch.empty_like(tensor)
        kept = buffer[: tensor.shape[0]]
        kept.copy_(tensor)
        return kept
