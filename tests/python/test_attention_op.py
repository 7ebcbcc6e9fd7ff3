"""CPU attention through the PyTorch op against a float64 reference of the expanded mask."""

import pytest
import torch

import radial_attention as ra
import reference

# Relative error bounds per input dtype (the library accumulates in float32).
TOLERANCE = {torch.float32: 1e-5, torch.bfloat16: 5e-3, torch.float16: 1e-3}


def rel_error(got, expected):
    got = got.to(torch.float64)
    return float((got - expected).abs().max() / expected.abs().max())


def random_qkv(shape, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=g, dtype=torch.float32).to(dtype) for _ in range(3)]


PLANS = [
    dict(frames=5, tokens_per_frame=64, block_size=64, model="wan", decay_factor=1.0),
    dict(frames=6, tokens_per_frame=100, block_size=64, model="wan", decay_factor=0.2),
    dict(frames=4, tokens_per_frame=80, block_size=128, model="hunyuan", decay_factor=0.95,
         text_tokens=24, text_valid=17),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("spec", PLANS, ids=["wan-b64", "wan-partial-block", "hunyuan-text"])
def test_matches_reference(spec, dtype, seed, poisoned):
    plan = ra.plan(**spec)
    q, k, v = random_qkv((2, plan.seq_len, 3, 64), dtype, seed)
    out, lse = ra.attention(q, k, v, plan, return_lse=True)
    assert out.shape == q.shape and out.dtype == dtype
    assert lse.shape == (2, 3, plan.seq_len) and lse.dtype == torch.float32
    assert torch.isfinite(out).all() and torch.isfinite(lse).all()
    expected, expected_lse = reference.attention(q, k, v, reference.token_mask(plan))
    assert rel_error(out, expected) < TOLERANCE[dtype]
    assert float((lse.double() - expected_lse).abs().max()) < 1e-3
    # The mask matters: dense attention differs.
    dense, _ = reference.attention(q, k, v, torch.ones_like(reference.token_mask(plan)))
    assert rel_error(out, dense) > 10 * TOLERANCE[dtype]


def test_bhsd_layout_and_scale(seed, poisoned):
    plan = ra.plan(frames=3, tokens_per_frame=64, block_size=64, decay_factor=0.5)
    q, k, v = random_qkv((2, 4, plan.seq_len, 32), torch.float32, seed)  # [B, H, S, D]
    out = ra.attention(q, k, v, plan, scale=0.3, layout="bhsd")
    assert out.shape == q.shape
    expected, _ = reference.attention(*(t.transpose(1, 2) for t in (q, k, v)),
                                      reference.token_mask(plan), scale=0.3)
    assert rel_error(out.transpose(1, 2), expected) < 1e-5


def test_strided_views_pass_unchanged(seed, poisoned):
    # q, k, v as slices of one fused [B, S, 3, H, D] projection, as models produce them.
    plan = ra.plan(frames=4, tokens_per_frame=64, block_size=64)
    g = torch.Generator().manual_seed(seed)
    fused = torch.randn(2, plan.seq_len, 3, 2, 64, generator=g)
    q, k, v = fused.unbind(2)
    assert not q.is_contiguous()
    out = ra.attention(q, k, v, plan)
    expected, _ = reference.attention(q, k, v, reference.token_mask(plan))
    assert rel_error(out, expected) < 1e-5


def test_nan_inputs_propagate(seed):
    plan = ra.plan(frames=3, tokens_per_frame=64, block_size=64)
    q, k, v = random_qkv((1, plan.seq_len, 1, 64), torch.float32, seed)
    v[0, 0, 0, 0] = float("nan")  # key 0 is the attention sink: every row sees it
    out = ra.attention(q, k, v, plan)
    assert torch.isnan(out[..., 0]).all()


def test_plan_token_mask_matches_hand_expansion():
    plan = ra.plan(frames=4, tokens_per_frame=70, text_tokens=20, text_valid=5, model="hunyuan",
                   block_size=64, decay_factor=0.5)
    assert torch.equal(plan.token_mask(), reference.token_mask(plan))
