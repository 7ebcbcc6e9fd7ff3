"""The backward pass through PyTorch: gradients of radial_attention.attention against float64
autograd through the independent reference (tests/python/reference.py), gradcheck, opcheck
with its autograd tests, a compiled training step, the C ABI entry and its bad inputs."""

import ctypes

import pytest
import torch

import radial_attention as ra
import reference
from radial_attention import RadialError, _lib

# Relative error bounds of the gradients per input dtype: float32 accumulation; 16-bit inputs
# add the rounding of the stored gradients and of the forward's out (D = rowsum(dO * out)).
TOLERANCE = {torch.float32: 1e-4, torch.bfloat16: 8e-3, torch.float16: 2e-3}

PLANS = [
    dict(frames=5, tokens_per_frame=64, block_size=64, model="wan", decay_factor=1.0),
    dict(frames=6, tokens_per_frame=100, block_size=64, model="wan", decay_factor=0.2),
    dict(frames=4, tokens_per_frame=80, block_size=128, model="hunyuan", decay_factor=0.95,
         text_tokens=24, text_valid=17),
]


def rel_error(got, expected):
    return float((got.double() - expected).abs().max() / expected.abs().max())


def random_tensors(shape, dtype, seed, count=4):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=g).to(dtype) for _ in range(count)]


def reference_grads(q, k, v, d_out, plan, scale=None):
    """dq, dk, dv in float64 by autograd through the reference's masked softmax."""
    q, k, v = (t.detach().double().requires_grad_(True) for t in (q, k, v))
    out, _ = reference.attention(q, k, v, reference.token_mask(plan), scale=scale)
    return torch.autograd.grad(out, (q, k, v), d_out.double())


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("spec", PLANS, ids=["wan-b64", "wan-partial-block", "hunyuan-text"])
def test_gradients_match_reference(spec, dtype, seed, poisoned):
    plan = ra.plan(**spec)
    q, k, v, d_out = random_tensors((2, plan.seq_len, 3, 64), dtype, seed)
    for t in (q, k, v):
        t.requires_grad_(True)
    ra.attention(q, k, v, plan).backward(d_out)
    expected = reference_grads(q, k, v, d_out, plan)
    for name, t, want in zip("qkv", (q, k, v), expected):
        assert t.grad.dtype == dtype and t.grad.shape == t.shape
        assert torch.isfinite(t.grad).all(), name
        assert rel_error(t.grad, want) < TOLERANCE[dtype], name
    # Padded text keys get exactly zero gradients.
    assert not k.grad[:, plan.key_limit:].any() and not v.grad[:, plan.key_limit:].any()


def test_bhsd_strided_scale_and_lse_output(seed, poisoned):
    # q, k, v as slices of one fused [B, H, 3, S, D] tensor, read as bhsd; return_lse too.
    plan = ra.plan(frames=3, tokens_per_frame=100, block_size=64, decay_factor=0.5)
    g = torch.Generator().manual_seed(seed)
    fused = torch.randn(2, 2, 3, plan.seq_len, 32, generator=g).requires_grad_(True)
    q, k, v = fused.unbind(2)
    out, lse = ra.attention(q, k, v, plan, scale=0.3, layout="bhsd", return_lse=True)
    assert not lse.requires_grad  # no gradient through lse
    d_out = torch.randn(out.shape, generator=g)
    out.backward(d_out)
    expected = reference_grads(*(t.transpose(1, 2) for t in (q, k, v, d_out)), plan, scale=0.3)
    got = fused.grad.unbind(2)
    for name, t, want in zip("qkv", got, expected):
        assert rel_error(t.transpose(1, 2), want) < 1e-4, name


def test_forward_without_lse_still_differentiates(seed):
    # Calling the op itself with need_lse False: the backward recomputes lse.
    plan = ra.plan(frames=3, tokens_per_frame=64, block_size=64)
    q, k, v, d_out = random_tensors((1, plan.seq_len, 2, 16), torch.float32, seed)
    q.requires_grad_(True)
    geometry, spec, decay = plan.key.op_args()
    out, lse = torch.ops.radial_attention.attention(q, k, v, geometry, spec, decay, 0.0, False,
                                                    False)
    assert lse.shape == (0,)
    out.backward(d_out)
    assert rel_error(q.grad, reference_grads(q, k, v, d_out, plan)[0]) < 1e-4


def test_gradcheck_float64():
    """gradcheck takes float64 inputs; the library computes in float32 (it has no float64
    kernel), so the finite-difference step and tolerances suit float32 rounding: measured to
    pass on correct gradients and to fail when any of dq, dk, dv is off by 1%."""
    # 3 block rows of 64 (a tail of 24), 5 padded text keys, density 0.78.
    plan = ra.plan(frames=3, tokens_per_frame=48, text_tokens=8, text_valid=3, model="hunyuan",
                   decay_factor=0.2, block_size=64)
    assert plan.density < 1
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, plan.seq_len, 1, 4, generator=g, dtype=torch.float64)
               .requires_grad_(True) for _ in range(3))

    def f(q, k, v):
        return ra.attention(q.float(), k.float(), v.float(), plan).double()

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # thousands of tiny calls: threads only cost here
    try:
        assert torch.autograd.gradcheck(f, (q, k, v), eps=1e-3, atol=5e-4, rtol=5e-3)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("layout", ["bshd", "bhsd"])
def test_opcheck_with_autograd(layout, seed):
    plan = ra.plan(frames=4, tokens_per_frame=64, block_size=64, text_tokens=10, text_valid=7,
                   model="hunyuan")
    shape = (2, plan.seq_len, 3, 32) if layout == "bshd" else (2, 3, plan.seq_len, 32)
    q, k, v = (t.requires_grad_(True) for t in random_tensors(shape, torch.float32, seed, 3))
    geometry, spec, decay = plan.key.op_args()
    for need_lse in (True, False):
        torch.library.opcheck(torch.ops.radial_attention.attention.default,
                              (q, k, v, geometry, spec, decay, 0.0, layout == "bhsd", need_lse))


def test_opcheck_backward_op(seed):
    plan = ra.plan(frames=3, tokens_per_frame=64, block_size=64)
    q, k, v, d_out = random_tensors((1, plan.seq_len, 2, 32), torch.bfloat16, seed)
    geometry, spec, decay = plan.key.op_args()
    out, lse = torch.ops.radial_attention.attention(q, k, v, geometry, spec, decay, 0.0, False, True)
    torch.library.opcheck(torch.ops.radial_attention.attention_backward.default,
                          (d_out, q, k, v, out, lse, geometry, spec, decay, 0.0, False))


def test_compiled_training_step_matches_eager(seed):
    plan = ra.plan(frames=4, tokens_per_frame=64, block_size=64, decay_factor=0.5)
    g = torch.Generator().manual_seed(seed)
    w_in = (torch.randn(64, 3 * 64, generator=g) / 8).requires_grad_(True)
    w_out = (torch.randn(64, 64, generator=g) / 8).requires_grad_(True)
    x = torch.randn(2, plan.seq_len, 64, generator=g)
    target = torch.randn(2, plan.seq_len, 64, generator=g)

    def loss_fn(x, w_in, w_out):
        q, k, v = (x @ w_in).unflatten(-1, (3, 2, 32)).unbind(2)
        out = ra.attention(q, k, v, plan).flatten(2)
        return ((out @ w_out - target) ** 2).mean()

    def grads(fn):
        w_in.grad = w_out.grad = None
        loss = fn(x, w_in, w_out)
        loss.backward()
        return loss.detach(), w_in.grad.clone(), w_out.grad.clone()

    torch._dynamo.reset()
    compiled = torch.compile(loss_fn, fullgraph=True)
    got = grads(compiled)
    expected = grads(loss_fn)
    for a, b in zip(got, expected):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)
    # And the gradient is the reference's: the same step with the masked float64 softmax.
    mask = reference.token_mask(plan)
    w_in64, w_out64 = (w.detach().double().requires_grad_(True) for w in (w_in, w_out))
    q, k, v = (x.double() @ w_in64).unflatten(-1, (3, 2, 32)).unbind(2)
    out, _ = reference.attention(q, k, v, mask)
    ((out.flatten(2) @ w_out64 - target.double()) ** 2).mean().backward()
    assert rel_error(got[1], w_in64.grad) < 1e-4


# Bad inputs to the backward op: each a RadialError naming the argument.
def expect(argument, fragment, fn, *args):
    with pytest.raises(RadialError) as info:
        fn(*args)
    message = str(info.value)
    assert info.value.argument == argument, message
    assert message.startswith(f"radial: {argument}: expected "), message
    assert fragment in message, message


def test_backward_op_bad_inputs(seed):
    plan = ra.plan(frames=3, tokens_per_frame=64, block_size=64)
    q, k, v, d_out = random_tensors((1, plan.seq_len, 2, 32), torch.float32, seed)
    geometry, spec, decay = plan.key.op_args()
    out, lse = torch.ops.radial_attention.attention(q, k, v, geometry, spec, decay, 0.0, False, True)
    op = torch.ops.radial_attention.attention_backward

    def call(d_out=d_out, q=q, k=k, v=v, out=out, lse=lse, geometry=geometry):
        return op(d_out, q, k, v, out, lse, geometry, spec, decay, 0.0, False)

    call()  # the good call passes
    expect("grad_out.shape", "(q.shape", call, d_out[:, :, :1])
    expect("grad_out.dtype", "got torch.bfloat16", call, d_out.bfloat16())
    expect("out.dtype", "got torch.float16", call, d_out, q, k, v, out.half())
    expect("k.dtype", "got torch.bfloat16", call, d_out, q, k.bfloat16())
    expect("v.shape", "(q.shape", call, d_out, q, k, v[:, :, :1])
    expect("lse", "got torch.float32 of shape (1, 2, 191)", call, d_out, q, k, v, out, lse[..., 1:])
    expect("lse", "got torch.float64", call, d_out, q, k, v, out, lse.double())
    # A missing lse (what need_lse=False returns) is not mistaken for one.
    expect("lse", "got torch.float32 of shape (0,)", call, d_out, q, k, v, out, lse.new_empty(0))
    # Gradients on a plan of another geometry: 4 frames where the forward had 3.
    other = ra.plan(frames=4, tokens_per_frame=64, block_size=64).key.op_args()[0]
    expect("q.seq", "got 192", call, d_out, q, k, v, out, lse, other)


def test_c_abi_backward_with_choice(seed):
    """radial_attention_backward_with_choice: NULL or "" runs what radial_attention_backward
    runs (deterministic 0); a choice names a CUDA kernel, so CPU tensors refuse one; bad text,
    or a backward variant without direction=backward, is named by its field."""
    lib = _lib.lib()
    plan = ra.plan(frames=2, tokens_per_frame=64, block_size=64)
    q, k, v, out, d_out = random_tensors((1, plan.seq_len, 1, 16), torch.float32, seed, 5)
    grads = [torch.full_like(q, float("nan")) for _ in range(6)]
    lse = torch.empty(1, 1, plan.seq_len)

    def view(t):
        return _lib.Tensor(t.data_ptr(), _lib.DTYPE_F32, _lib.DEVICE_CPU, 0, 0, 1, plan.seq_len,
                           1, 16, plan.seq_len * 16, 16, 16)

    refs = [ctypes.byref(view(t)) for t in (q, k, v, out, d_out, *grads)]
    lse_pointer = ctypes.c_void_p(lse.data_ptr())
    assert lib.radial_attention(plan.handle, *refs[:4], lse_pointer, 0.0, 1, None) == _lib.OK

    def call(choice, grad_refs):
        return lib.radial_attention_backward_with_choice(plan.handle, *refs[:5], lse_pointer,
                                                         *grad_refs, 0.0, 1, None, choice)

    assert lib.radial_attention_backward(plan.handle, *refs[:5], lse_pointer, *refs[5:8], 0.0, 1,
                                         0, None) == _lib.OK
    for choice in (None, b""):
        for g in grads[3:]:
            g.fill_(float("nan"))
        assert call(choice, refs[8:]) == _lib.OK
        for a, b in zip(grads[:3], grads[3:]):
            assert torch.isfinite(b).all() and torch.equal(a, b)

    def refused(choice, grad_refs=refs[8:]):
        assert call(choice, grad_refs) == _lib.INVALID_ARGUMENT
        return lib.radial_last_error_argument().decode()

    assert refused(b"family=hopper,direction=backward,variant=bwd_rs_dv") == "choice"
    assert refused(b"family=volta") == "choice.family"
    assert refused(b"family=hopper,variant=bwd_rs_dv") == "choice.variant"
    assert refused(b"family=portable,direction=backward,variant=bwd_rs_dv") == "choice.variant"
    # The tensors are read first: a missing d_q is named whatever the choice.
    assert refused(b"family=volta", [None, *refs[9:]]) == "d_q"


def test_c_abi_backward_bad_pointers(seed):
    lib = _lib.lib()
    plan = ra.plan(frames=2, tokens_per_frame=64, block_size=64)
    q, k, v, out, d_out, dq, dk, dv = random_tensors((1, plan.seq_len, 1, 16), torch.float32, seed, 8)
    lse = torch.empty(1, 1, plan.seq_len)

    def view(t):
        return _lib.Tensor(t.data_ptr(), _lib.DTYPE_F32, _lib.DEVICE_CPU, 0, 0, 1, plan.seq_len,
                           1, 16, plan.seq_len * 16, 16, 16)

    views = [view(t) for t in (q, k, v, out, d_out, dq, dk, dv)]

    def call(lse_pointer, *refs, deterministic=0):
        return lib.radial_attention_backward(plan.handle, *refs[:5], lse_pointer, *refs[5:], 0.0,
                                             1, deterministic, None)

    refs = [ctypes.byref(x) for x in views]
    lse_pointer = ctypes.c_void_p(lse.data_ptr())
    assert lib.radial_attention(plan.handle, *refs[:4], lse_pointer, 0.0, 1, None) == _lib.OK
    assert call(lse_pointer, *refs) == _lib.OK
    assert torch.isfinite(dq).all() and dq.abs().max() > 0

    def last_argument():
        return lib.radial_last_error_argument().decode()

    assert call(None, *refs) == _lib.INVALID_ARGUMENT and last_argument() == "lse"
    assert "log-sum-exp" in lib.radial_last_error().decode()
    assert call(lse_pointer, *refs[:4], None, *refs[5:]) == _lib.INVALID_ARGUMENT
    assert last_argument() == "d_out"
    assert call(lse_pointer, *refs[:7], None) == _lib.INVALID_ARGUMENT and last_argument() == "d_v"
    assert call(lse_pointer, *refs, deterministic=2) == _lib.INVALID_ARGUMENT
    assert last_argument() == "deterministic"
    views[5].dtype = _lib.DTYPE_BF16  # d_q of another dtype than q
    assert call(lse_pointer, *refs) == _lib.INVALID_ARGUMENT and last_argument() == "d_q.dtype"
