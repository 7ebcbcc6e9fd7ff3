"""The op as PyTorch sees it: opcheck (schema, fake tensor, dispatch) and torch.compile."""

import pytest
import torch

import radial_attention as ra
import reference


def op_inputs(plan, layout, seed, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    shape = (2, plan.seq_len, 3, 64) if layout == "bshd" else (2, 3, plan.seq_len, 64)
    return [torch.randn(shape, generator=g).to(dtype) for _ in range(3)]


@pytest.mark.parametrize("need_lse", [True, False])
@pytest.mark.parametrize("layout", ["bshd", "bhsd"])
def test_opcheck(layout, need_lse, seed):
    plan = ra.plan(frames=4, tokens_per_frame=64, block_size=64, text_tokens=10, text_valid=7,
                   model="hunyuan")
    q, k, v = op_inputs(plan, layout, seed)
    geometry, spec, decay = plan.key.op_args()
    torch.library.opcheck(torch.ops.radial_attention.attention.default,
                          (q, k, v, geometry, spec, decay, 0.0, layout == "bhsd", need_lse))


def test_opcheck_bf16(seed):
    plan = ra.plan(frames=3, tokens_per_frame=64, block_size=64)
    q, k, v = op_inputs(plan, "bshd", seed, torch.bfloat16)
    geometry, spec, decay = plan.key.op_args()
    torch.library.opcheck(torch.ops.radial_attention.attention.default,
                          (q, k, v, geometry, spec, decay, 0.125, False, True))


def test_compile_fullgraph(seed):
    plan = ra.plan(frames=4, tokens_per_frame=64, block_size=64, decay_factor=0.5)
    other = ra.plan(frames=3, tokens_per_frame=64, block_size=64, decay_factor=0.5)

    def block(x, w, p):
        q, k, v = (x @ w).unflatten(-1, (3, 2, 64)).unbind(2)  # [B, S, H, D] views
        out, lse = ra.attention(q, k, v, p, return_lse=True)
        return out.flatten(2) * 2 + lse.mean()

    g = torch.Generator().manual_seed(seed)
    w = torch.randn(128, 384, generator=g) / 12
    torch._dynamo.reset()
    compiled = torch.compile(block, fullgraph=True)
    for p in (plan, other):  # a new geometry recompiles; no graph break either way
        x = torch.randn(2, p.seq_len, 128, generator=g)
        got = compiled(x, w, p)
        q, k, v = (x @ w).unflatten(-1, (3, 2, 64)).unbind(2)
        out, lse = reference.attention(q, k, v, reference.token_mask(p))
        expected = out.flatten(2) * 2 + lse.mean()
        assert float((got.double() - expected).abs().max()) < 1e-4

