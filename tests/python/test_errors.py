"""Bad input raises RadialError (a ValueError) that names the argument, expected and got."""

import pytest
import torch

import radial_attention as ra
from radial_attention import RadialError


@pytest.fixture
def plan():
    return ra.plan(frames=2, tokens_per_frame=64, block_size=64)


def qkv(plan, dtype=torch.float32, dim=64, seq=None):
    seq = plan.seq_len if seq is None else seq
    return [torch.randn(1, seq, 2, dim).to(dtype) for _ in range(3)]


def expect(argument, fragment, fn, *args, **kwargs):
    with pytest.raises(RadialError) as info:
        fn(*args, **kwargs)
    assert isinstance(info.value, ValueError)
    assert info.value.argument == argument
    message = str(info.value)
    assert message.startswith(f"radial: {argument}: expected "), message
    assert fragment in message, message


def test_dtype(plan):
    q, k, v = qkv(plan, torch.float64)
    expect("q.dtype", "got torch.float64", ra.attention, q, k, v, plan)
    q, k, v = qkv(plan)
    expect("v.dtype", "got torch.float16", ra.attention, q, k, v.half(), plan)


def test_shapes(plan):
    q, k, v = qkv(plan)
    expect("q", "got shape (128, 2, 64)", ra.attention, q[0], k, v, plan)
    expect("k.shape", "(q.shape", ra.attention, q, k[:, :64], v, plan)
    q, k, v = qkv(plan, seq=100)
    expect("q.seq", "got 100", ra.attention, q, k, v, plan)
    # bhsd reads the second dim as heads: the same tensors now have the wrong seq.
    q, k, v = qkv(plan)
    expect("q.seq", "got 2", ra.attention, q, k, v, plan, layout="bhsd")


def test_library_checks_reach_python(plan):
    q, k, v = qkv(plan, dim=300)  # only the library knows its head-dim limit
    expect("q.dim", "got 300", ra.attention, q, k, v, plan)


def test_arguments(plan):
    q, k, v = qkv(plan)
    expect("layout", "got 'bsdh'", ra.attention, q, k, v, plan, layout="bsdh")
    expect("scale", "got -1.0", ra.attention, q, k, v, plan, scale=-1.0)
    expect("scale", "got nan", ra.attention, q, k, v, plan, scale=float("nan"))
    expect("plan", "got str", ra.attention, q, k, v, "radial")
    expect("q", "got list", ra.attention, [1.0], k, v, plan)


def test_plan_arguments():
    expect("block_size", "expected 64 or 128, got 96", ra.plan, frames=2, tokens_per_frame=64,
           block_size=96)
    expect("decay_factor", "got 0", ra.plan, frames=2, tokens_per_frame=64, decay_factor=0)
    expect("frames", "got 0", ra.plan, frames=0, tokens_per_frame=64)
    expect("text_valid", "got 9", ra.plan, frames=2, tokens_per_frame=64, text_tokens=8,
           text_valid=9)
    expect("model", "got 'flux'", ra.plan, frames=2, tokens_per_frame=64, model="flux")
    expect("pattern", "got 'sparse'", ra.plan, frames=2, tokens_per_frame=64, pattern="sparse")
    expect("frames", "got 2.5", ra.plan, frames=2.5, tokens_per_frame=64)
    expect("video_frames", "nearest are 69 and 73", ra.plan, video_frames=70, height=480,
           width=832)
    expect("height", "got 470", ra.plan, video_frames=81, height=470, width=832)


def test_runtime_error_type_is_distinct():
    assert not issubclass(ra.RadialRuntimeError, ValueError)


def test_precision(plan):
    q, k, v = qkv(plan)
    expect("precision", "got 'int8'", ra.attention, q, k, v, plan, precision="int8")
    # fp8 runs on CUDA devices of compute capability 9.0 only; the library names the option.
    expect("options.precision", "native on the CPU backend", ra.attention, q, k, v, plan,
           precision="fp8")
    # Forward only: refused before the library when a gradient may follow.
    q.requires_grad_(True)
    expect("precision", "when a gradient may follow", ra.attention, q, k, v, plan,
           precision="fp8")
