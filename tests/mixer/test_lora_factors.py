"""A component's low-rank delta on a fused layer equals sum_k scale_k (x A_k^T) B_k^T on each
projection's outputs, and split across tensor-parallel ranks it adds up to the whole layer's:
column-parallel ranks concatenate, row-parallel ranks sum."""

import torch

from mixer.lora.factors import Factor, Layout, Shard, fuse, stack

torch.manual_seed(0)
IN, Q, KV, R = 12, 8, 4, 3


def factor(projection: str, out: int, rank: int = R, scale: float = 1.0) -> Factor:
    return Factor(projection, torch.randn(rank, IN), torch.randn(out, rank), scale)


def qkv_layout(rank: int = 0, ranks: int = 1, kv_replicas: int = 1) -> Layout:
    q, kv = Q // ranks, KV // (ranks // kv_replicas)  # each KV shard on kv_replicas ranks
    kv_rank = rank // kv_replicas
    return Layout(
        {
            "q_proj": Shard(0, q, rank * q),
            "k_proj": Shard(q, kv, kv_rank * kv),
            "v_proj": Shard(q + kv, kv, kv_rank * kv),
        }
    )


def apply(delta, x: torch.Tensor, out: int) -> torch.Tensor:
    y = torch.zeros(x.shape[0], out, dtype=torch.float64)
    delta.add_to(y, x)
    return y


def expected(x: torch.Tensor, f: Factor) -> torch.Tensor:
    return f.scale * (x @ f.a.double().t()) @ f.b.double().t()


def test_a_fused_qkv_delta_adds_each_projections_own_product():
    x = torch.randn(5, IN, dtype=torch.float64)
    q, v, v2 = factor("q_proj", Q, scale=2.0), factor("v_proj", KV, rank=2, scale=0.5), factor("v_proj", KV, scale=0.25)
    delta = fuse([q, v, v2], qkv_layout(), torch.float64, "cpu")
    y = apply(delta, x, Q + 2 * KV)
    torch.testing.assert_close(y[:, :Q], expected(x, q))
    torch.testing.assert_close(y[:, Q : Q + KV], torch.zeros(5, KV, dtype=torch.float64))  # k not adapted
    torch.testing.assert_close(y[:, Q + KV :], expected(x, v) + expected(x, v2))  # a soup's two terms add up
    assert delta.rank == R + 2 + R


def test_column_parallel_ranks_hold_their_own_outputs():
    x = torch.randn(4, IN, dtype=torch.float64)
    q, k = factor("q_proj", Q), factor("k_proj", KV)
    whole = apply(fuse([q, k], qkv_layout(), torch.float64, "cpu"), x, Q + 2 * KV)
    for ranks, replicas in [(2, 1), (4, 1), (8, 2)]:  # 8 ranks over 4 KV heads: each KV head on two ranks
        for rank in range(ranks):
            layout = qkv_layout(rank, ranks, replicas)
            out = sum(s.size for s in layout.outputs.values())
            mine = apply(fuse([q, k], layout, torch.float64, "cpu"), x, out)
            for name, shard in layout.outputs.items():
                full = {"q_proj": 0, "k_proj": Q, "v_proj": Q + KV}[name]
                torch.testing.assert_close(
                    mine[:, shard.offset : shard.offset + shard.size],
                    whole[:, full + shard.start : full + shard.start + shard.size],
                )


def test_row_parallel_ranks_sum_to_the_whole_delta():
    x = torch.randn(3, IN, dtype=torch.float64)
    o = factor("o_proj", 6)
    whole = apply(fuse([o], Layout({"o_proj": Shard(0, 6, 0)}), torch.float64, "cpu"), x, 6)
    parts = []
    for rank in range(3):
        layout = Layout({"o_proj": Shard(0, 6, 0)}, inputs=(rank * 4, 4))
        parts.append(apply(fuse([o], layout, torch.float64, "cpu"), x[:, rank * 4 : (rank + 1) * 4], 6))
    torch.testing.assert_close(sum(parts), whole)


def test_factors_are_kept_in_the_serving_dtype_with_the_scale_folded_in():
    seen = []

    def recording(matrix):
        seen.append(matrix)
        return lambda x: x @ matrix

    f = factor("q_proj", Q, scale=3.0)
    fuse([f], qkv_layout(), torch.bfloat16, "cpu", recording)
    down, up = seen
    assert up.dtype == down.dtype == torch.bfloat16
    torch.testing.assert_close(down.float(), f.a.t(), atol=0.02, rtol=0.01)
    torch.testing.assert_close(up.float(), 3.0 * f.b.t(), atol=0.05, rtol=0.01)


def folded(stacked, up: torch.Tensor, weight: torch.Tensor, x: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
    """What StackedLoRAMethod serves: [x | hidden] times the base weight (out, in) extended."""
    return torch.cat([x, hidden], dim=1) @ stacked.extend(weight, up).t()


def test_stacked_deltas_give_each_row_its_own_components_delta_whatever_runs_beside_it():
    # component 0 (the reference) has no delta, 1 adapts q and v, 2 adapts k (a narrower span), 3 is a soup of q's
    by_component = {
        1: [factor("q_proj", Q), factor("v_proj", KV, rank=2)],
        2: [factor("k_proj", KV, rank=4, scale=0.5)],
        3: [factor("q_proj", Q, scale=0.3), factor("q_proj", Q, rank=1, scale=0.7)],
    }
    stacked, up = stack(by_component, qkv_layout(), 4, torch.float64, "cpu")
    alone = {c: fuse(found, qkv_layout(), torch.float64, "cpu") for c, found in by_component.items()}
    weight = torch.randn(Q + 2 * KV, IN, dtype=torch.float64)
    rows = 3
    x = torch.randn(4 * rows, IN, dtype=torch.float64)
    for run in ([0, 1, 2, 3], [2], [3, 0], [0]):
        blocks = x[: len(run) * rows]
        y = folded(stacked, up, weight, blocks, stacked.hidden(blocks, run))
        for b, component in enumerate(run):
            mine = blocks[b * rows : (b + 1) * rows]
            want = mine @ weight.t()
            if component in alone:
                alone[component].add_to(want, mine)
            torch.testing.assert_close(y[b * rows : (b + 1) * rows], want)
    assert stacked.adapted == {1, 2, 3} and stacked.mask.sum(dim=1).tolist() == [0, R + 2, 4, R + 1]


def test_deltas_by_rows_equal_the_deltas_by_run():
    # what a compiled graph runs (each row's component as a tensor) gives what eager runs
    by_component = {1: [factor("q_proj", Q)], 2: [factor("k_proj", KV, rank=4)]}
    stacked, _ = stack(by_component, qkv_layout(), 3, torch.float64, "cpu")
    rows = 2
    for run in ([0, 1, 2], [2], [1, 0]):
        x = torch.randn(len(run) * rows, IN, dtype=torch.float64)
        by_rows = stacked.hidden_by_rows(x, torch.tensor(run).repeat_interleave(rows))
        assert torch.equal(by_rows, stacked.hidden(x, run))
