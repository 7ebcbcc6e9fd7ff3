"""Sizes at the limits (issue 10): integers past the C types, sizes that overflow, thread
counts past the machine's, sparse and expanded tensors. Each is a RadialError naming the
argument, or (expanded inputs, thread counts) the same answer as the plain case."""

import ctypes

import pytest
import torch

import radial_attention as ra
import reference
from radial_attention import RadialError, _lib

INT64_MAX = 2**63 - 1
INT32_MAX = 2**31 - 1


def expect(argument, fragments, fn, *args, **kwargs):
    with pytest.raises(RadialError) as info:
        fn(*args, **kwargs)
    assert info.value.argument == argument, str(info.value)
    message = str(info.value)
    assert message.startswith(f"radial: {argument}: expected "), message
    for fragment in fragments:
        assert fragment in message, message


def last_error():
    lib = _lib.lib()
    return lib.radial_last_error().decode(), lib.radial_last_error_argument().decode()


def test_ints_past_the_c_types_are_refused_not_truncated():
    # ctypes kept the low bits: 2**64 + 2 frames planned 2, block 2**32 + 128 became 128.
    expect("frames", ["int64_t", str(2**64 + 2)], ra.plan, frames=2**64 + 2, tokens_per_frame=64)
    expect("block_size", ["int32_t", str(2**32 + 128)], ra.plan, frames=2, tokens_per_frame=64,
           block_size=2**32 + 128)
    expect("text_valid", ["int64_t"], ra.plan, frames=2, tokens_per_frame=64, text_tokens=4,
           text_valid=-(2**63) - 1)
    expect("video_frames", ["int64_t"], ra.plan, video_frames=2**64 + 1, height=16, width=16)
    expect("height", ["int64_t"], ra.geometry_from_video, "wan", 1, -(2**70), 16)
    # Keys made elsewhere (the op's plain ints) are checked as well before the call.
    key = ra.PlanKey(frames=2, tokens_per_frame=64, block_size=2**32 + 64)
    expect("block_size", ["int32_t"], ra.Plan, key)


def test_token_counts_that_overflow_are_refused():
    # The library compared a wrapped (negative) total: a plan with seq_len < 0 came back.
    expect("total tokens", ["at most 2147483647"], ra.plan, frames=1, tokens_per_frame=1,
           text_tokens=INT64_MAX)
    expect("frames * tokens_per_frame", ["at most 2147483647"], ra.plan, frames=2**33,
           tokens_per_frame=2**31)
    expect("height * width", ["tokens per frame"], ra.plan, video_frames=1, height=4386832,
           width=1076486740971536)


def test_plans_past_the_limit_are_refused_by_name():
    expect("geometry", ["kMaxKeptBlocks", "268435456"], ra.plan, frames=1,
           tokens_per_frame=2147483646)


def test_c_abi_refuses_geometries_that_overflow():
    lib = _lib.lib()
    handle = ctypes.c_void_p()
    geometry = _lib.Geometry(1, 1, INT64_MAX, -1)
    spec = _lib.PlanSpec(0, 0, 1.0, 128, 0)
    status = lib.radial_plan_create(ctypes.byref(geometry), ctypes.byref(spec), ctypes.byref(handle))
    assert status == _lib.INVALID_ARGUMENT and not handle.value
    assert last_error()[1] == "total tokens"
    out = _lib.Geometry()
    status = lib.radial_geometry_from_video(0, INT64_MAX, 16, 16, 0, -1, ctypes.byref(out))
    assert status == _lib.INVALID_ARGUMENT
    assert "-" not in last_error()[0].split("got")[0], last_error()  # no negative hint


@pytest.fixture
def plan_handle():
    lib = _lib.lib()
    handle = ctypes.c_void_p()
    geometry = _lib.Geometry(2, 64, 0, -1)
    spec = _lib.PlanSpec(1, 0, 1.0, 64, 0)  # dense, block 64: one block
    assert lib.radial_plan_create(ctypes.byref(geometry), ctypes.byref(spec), ctypes.byref(handle)) == _lib.OK
    yield handle
    lib.radial_plan_destroy(handle)


def test_c_abi_refuses_strides_whose_largest_offset_overflows(plan_handle):
    lib = _lib.lib()
    q = torch.randn(1, 128, 2, 64)
    out = torch.full_like(q, float("nan"))
    good = _lib.Tensor(q.data_ptr(), _lib.DTYPE_F32, 0, 0, 0, 1, 128, 2, 64, 128 * 128, 128, 64)
    o = _lib.Tensor(out.data_ptr(), _lib.DTYPE_F32, 0, 0, 0, 1, 128, 2, 64, 128 * 128, 128, 64)
    for field, stride in (("stride_seq", 2**61), ("stride_head", 2**62), ("stride_seq", INT64_MAX)):
        bad = _lib.Tensor.from_buffer_copy(good)
        setattr(bad, field, stride)
        status = lib.radial_attention(plan_handle, ctypes.byref(bad), ctypes.byref(good),
                                      ctypes.byref(good), ctypes.byref(o), None, 0.0, 1, None)
        assert status == _lib.INVALID_ARGUMENT, field
        message, argument = last_error()
        assert argument == "q.strides" and "64 bits" in message, message
        assert torch.isnan(out).all()  # nothing written before the check


def test_c_abi_caps_thread_counts(plan_handle):
    # threads=INT32_MAX killed the process inside the OpenMP runtime.
    lib = _lib.lib()
    q, k, v = (torch.randn(1, 128, 2, 64) for _ in range(3))
    outs = []
    for threads in (1, INT32_MAX):
        out = torch.full_like(q, float("nan"))
        views = [_lib.Tensor(t.data_ptr(), _lib.DTYPE_F32, 0, 0, 0, 1, 128, 2, 64, 128 * 128, 128, 64)
                 for t in (q, k, v, out)]
        status = lib.radial_attention(plan_handle, *map(ctypes.byref, views), None, 0.0, threads, None)
        assert status == _lib.OK, last_error()
        outs.append(out)
    assert torch.isfinite(outs[0]).all()
    assert torch.equal(outs[0], outs[1])
    status = lib.radial_attention(plan_handle, *map(ctypes.byref, views), None, 0.0, -1, None)
    assert status == _lib.INVALID_ARGUMENT and last_error()[1] == "threads"


def test_sparse_tensors_get_a_radial_error():
    plan = ra.plan(frames=2, tokens_per_frame=64, block_size=64)
    q = torch.randn(1, 128, 2, 16)
    expect("q.layout", ["torch.strided", "sparse_coo"], ra.attention, q.to_sparse(), q, q, plan)
    expect("v.layout", ["torch.strided"], ra.attention, q, q, q.to_sparse(), plan)


@pytest.mark.parametrize("layout", ["bshd", "bhsd"])
def test_expanded_inputs_are_accepted(seed, poisoned, layout):
    # Broadcast along batch (k) and heads (v), stride 0, as `expand` makes them: once refused.
    g = torch.Generator().manual_seed(seed)
    plan = ra.plan(frames=2, tokens_per_frame=64, block_size=64)
    bshd = (2, 128, 3, 16)
    q = torch.randn(bshd, generator=g)
    k = torch.randn((1, 128, 3, 16), generator=g).expand(bshd)
    v = torch.randn((2, 128, 1, 16), generator=g).expand(bshd)
    want, _ = reference.attention(q, k, v, reference.token_mask(plan))
    if layout == "bhsd":
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
    assert 0 in k.stride() and 0 in v.stride()
    got = ra.attention(q, k, v, plan, layout=layout)
    if layout == "bhsd":
        got = got.transpose(1, 2)
    got = got.to(torch.float64)
    assert torch.isfinite(got).all()
    assert float((got - want).abs().max() / want.abs().max()) < 1e-5
