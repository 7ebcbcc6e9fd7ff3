"""The PyTorch operator: radial_attention::attention, a torch.library custom op.

The op takes the plan as plain ints and a float (its key) rather than an object, so that
torch.compile traces it without a graph break and opcheck can test it; the plan itself comes
from the cache in plan.py. A fake (meta) implementation gives compile the output shapes.
Its gradient is a second custom op, radial_attention::attention_backward (also with a fake),
registered with register_autograd, so compiled training steps trace forward and backward.
"""

import ctypes
import math

import torch

from . import _lib
from . import plan as _plan
from ._errors import RadialError, invalid

_DTYPES = {torch.float32: _lib.DTYPE_F32, torch.bfloat16: _lib.DTYPE_BF16,
           torch.float16: _lib.DTYPE_F16}
_LAYOUTS = ("bshd", "bhsd")


def _sizes(t: torch.Tensor, bhsd: bool):
    """(batch, seq, heads, dim) of a 4-D tensor in the given layout."""
    if bhsd:
        b, h, s, d = t.shape
    else:
        b, s, h, d = t.shape
    return b, s, h, d


def _check_inputs(q, k, v, geometry, bhsd: bool, fake: bool) -> None:
    """What can be checked without the library, worded like it: the argument, what was
    expected and what came. Runs at trace time too, so a bad call fails before compile."""
    layout = "bhsd" if bhsd else "bshd"
    dims = "[batch, heads, seq, head_dim]" if bhsd else "[batch, seq, heads, head_dim]"
    devices = ("cpu", "cuda", "meta") if fake else ("cpu", "cuda")
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise invalid(name, "a torch.Tensor", type(t).__name__)
        _require_strided(t, name)
        if t.dim() != 4:
            raise invalid(name, f"a 4-D tensor {dims} (layout \"{layout}\")",
                          f"shape {tuple(t.shape)}")
        if t.dtype not in _DTYPES:
            raise invalid(f"{name}.dtype", "torch.float32, torch.bfloat16 or torch.float16",
                          t.dtype)
        if t.device.type not in devices:
            raise invalid(f"{name}.device", "a cpu or cuda tensor", t.device)
    for name, t in (("k", k), ("v", v)):
        if t.shape != q.shape:
            raise invalid(f"{name}.shape", f"{tuple(q.shape)} (q.shape; self-attention)",
                          tuple(t.shape))
        if t.dtype != q.dtype:
            raise invalid(f"{name}.dtype", f"{q.dtype} (q.dtype)", t.dtype)
        if t.device != q.device:
            raise invalid(f"{name}.device", f"{q.device} (q.device)", t.device)
    seq_len = geometry[0] * geometry[1] + geometry[2]
    seq = _sizes(q, bhsd)[1]
    if seq != seq_len:
        raise invalid("q.seq", f"{seq_len} (the plan's tokens: {geometry[0]} frames x "
                      f"{geometry[1]} + {geometry[2]} text)", seq)


def _require_strided(t: torch.Tensor, name: str) -> None:
    # Sparse (and other non-strided) tensors have no data pointer and strides to hand over.
    if t.layout != torch.strided:
        raise invalid(f"{name}.layout", "torch.strided (a dense tensor; call .to_dense())",
                      t.layout)


def _readable(t: torch.Tensor) -> torch.Tensor:
    """t itself when the library can read it through its strides (head dim contiguous, every
    other stride >= 1), else a contiguous copy: expanded (broadcast, stride-0) inputs are
    materialised, since the kernels step through memory by strides >= 1."""
    usable = t.stride(-1) == 1 and all(t.stride(d) >= 1 or t.size(d) == 1 for d in range(3))
    return t if usable else t.contiguous()


def _new_output(shape, dtype, device) -> torch.Tensor:
    # One place that allocates outputs, so tests can poison them (fill with NaN) and prove
    # that the library wrote every element.
    return torch.empty(shape, dtype=dtype, device=device)


def _view(t: torch.Tensor, bhsd: bool) -> _lib.Tensor:
    b, s, h, d = _sizes(t, bhsd)
    if bhsd:
        sb, sh, ss, _ = t.stride()
    else:
        sb, ss, sh, _ = t.stride()
    device = _lib.DEVICE_CPU if t.device.type == "cpu" else _lib.DEVICE_CUDA
    return _lib.Tensor(t.data_ptr(), _DTYPES[t.dtype], device, t.device.index or 0, 0,
                       b, s, h, d, sb, ss, sh)


def _forward(q, k, v, geometry, spec, decay_factor, scale, bhsd, need_lse, precision):
    """One forward through the library (radial_attention_with_precision; "native" is
    radial_attention's arithmetic, "fp8" the FP8 forward, refused by the library off Hopper)."""
    _check_inputs(q, k, v, geometry, bhsd, fake=False)
    p = _plan.get(_plan.PlanKey.from_op_args(geometry, spec, decay_factor))
    # The library wants the head dim contiguous and strides >= 1; other strides pass as they are.
    q, k, v = (_readable(t) for t in (q, k, v))
    b, s, h, _ = _sizes(q, bhsd)
    out = _new_output(q.shape, q.dtype, q.device)
    lse = _new_output((b, h, s) if need_lse else (0,), torch.float32, q.device)
    if q.numel() == 0:
        return out, lse
    views = [_view(t, bhsd) for t in (q, k, v, out)]
    lse_pointer = ctypes.c_void_p(lse.data_ptr()) if need_lse else None
    code = _lib.PRECISIONS[precision]
    if q.device.type == "cuda":
        stream = torch.cuda.current_stream(q.device).cuda_stream
        with torch.cuda.device(q.device):
            status = _lib.lib().radial_attention_with_precision(
                p.handle, *map(ctypes.byref, views), lse_pointer, scale, 0, stream, code)
    else:
        status = _lib.lib().radial_attention_with_precision(
            p.handle, *map(ctypes.byref, views), lse_pointer, scale, torch.get_num_threads(),
            None, code)
    _lib.check(status)
    return out, lse


@torch.library.custom_op("radial_attention::attention", mutates_args=())
def _attention_op(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, geometry: list[int],
                  spec: list[int], decay_factor: float, scale: float, bhsd: bool,
                  need_lse: bool) -> tuple[torch.Tensor, torch.Tensor]:
    return _forward(q, k, v, geometry, spec, decay_factor, scale, bhsd, need_lse, "native")


@_attention_op.register_fake
def _attention_fake(q, k, v, geometry, spec, decay_factor, scale, bhsd, need_lse):
    _check_inputs(q, k, v, geometry, bhsd, fake=True)
    b, s, h, _ = _sizes(q, bhsd)
    out = q.new_empty(q.shape)
    lse = q.new_empty((b, h, s) if need_lse else (0,), dtype=torch.float32)
    return out, lse


@torch.library.custom_op("radial_attention::attention_fp8", mutates_args=())
def _attention_fp8_op(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, geometry: list[int],
                      spec: list[int], decay_factor: float, scale: float, bhsd: bool,
                      need_lse: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The FP8 forward (precision="fp8"): the library quantises q, k, v to e4m3 inside the call.
    Forward only: attention() refuses it when a gradient may follow."""
    return _forward(q, k, v, geometry, spec, decay_factor, scale, bhsd, need_lse, "fp8")


_attention_fp8_op.register_fake(_attention_fake)


def _lib_ready(t: torch.Tensor) -> torch.Tensor:
    """t itself when the library can read it (head dim contiguous, no zero strides: e.g. the
    expanded gradient of a sum), else a contiguous copy."""
    usable = t.stride(-1) == 1 and all(st > 0 or n == 1 for st, n in zip(t.stride(), t.shape))
    return t if usable else t.contiguous()


def _check_backward_inputs(grad_out, q, out, lse, bhsd: bool) -> None:
    """The backward's own tensors against the forward's q, worded like the library."""
    b, s, h, _ = _sizes(q, bhsd)
    for name, t in (("out", out), ("grad_out", grad_out)):
        if not isinstance(t, torch.Tensor):
            raise invalid(name, "a torch.Tensor", type(t).__name__)
        if t.shape != q.shape:
            raise invalid(f"{name}.shape", f"{tuple(q.shape)} (q.shape, as in the forward)",
                          tuple(t.shape))
        if t.dtype != q.dtype:
            raise invalid(f"{name}.dtype", f"{q.dtype} (q.dtype, as in the forward)", t.dtype)
        if t.device != q.device:
            raise invalid(f"{name}.device", f"{q.device} (q.device)", t.device)
    if not isinstance(lse, torch.Tensor):
        raise invalid("lse", "a torch.Tensor", type(lse).__name__)
    if lse.shape != (b, h, s) or lse.dtype != torch.float32:
        raise invalid("lse", f"the forward's log-sum-exp: float32 of shape {(b, h, s)} "
                      "[batch, heads, seq]", f"{lse.dtype} of shape {tuple(lse.shape)}")
    if lse.device != q.device:
        raise invalid("lse.device", f"{q.device} (q.device)", lse.device)


@torch.library.custom_op("radial_attention::attention_backward", mutates_args=())
def _attention_backward_op(grad_out: torch.Tensor, q: torch.Tensor, k: torch.Tensor,
                           v: torch.Tensor, out: torch.Tensor, lse: torch.Tensor,
                           geometry: list[int], spec: list[int], decay_factor: float,
                           scale: float, bhsd: bool
                           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients (dq, dk, dv) of radial_attention::attention, from its out and lse."""
    _check_inputs(q, k, v, geometry, bhsd, fake=False)
    _check_backward_inputs(grad_out, q, out, lse, bhsd)
    p = _plan.get(_plan.PlanKey.from_op_args(geometry, spec, decay_factor))
    q, k, v, out, grad_out = (_lib_ready(t) for t in (q, k, v, out, grad_out))
    lse = lse.contiguous()
    grads = [_new_output(q.shape, q.dtype, q.device) for _ in range(3)]
    if q.numel() == 0:
        return tuple(grads)
    views = [_view(t, bhsd) for t in (q, k, v, out, grad_out, *grads)]
    refs = [ctypes.byref(view) for view in views]
    lse_pointer = ctypes.c_void_p(lse.data_ptr())
    if q.device.type == "cuda":
        stream = torch.cuda.current_stream(q.device).cuda_stream
        # torch.use_deterministic_algorithms(True) asks for bit-identical gradients run to run
        # (the CUDA backward then accumulates dQ without atomics; the CPU one always does).
        deterministic = int(torch.are_deterministic_algorithms_enabled())
        with torch.cuda.device(q.device):
            status = _lib.lib().radial_attention_backward(p.handle, *refs[:5], lse_pointer,
                                                          *refs[5:], scale, 0, deterministic,
                                                          stream)
    else:
        status = _lib.lib().radial_attention_backward(p.handle, *refs[:5], lse_pointer, *refs[5:],
                                                      scale, torch.get_num_threads(), 0, None)
    _lib.check(status)
    return tuple(grads)


@_attention_backward_op.register_fake
def _attention_backward_fake(grad_out, q, k, v, out, lse, geometry, spec, decay_factor, scale,
                             bhsd):
    _check_inputs(q, k, v, geometry, bhsd, fake=True)
    _check_backward_inputs(grad_out, q, out, lse, bhsd)
    return q.new_empty(q.shape), q.new_empty(q.shape), q.new_empty(q.shape)


def _setup_context(ctx, inputs, output):
    q, k, v, geometry, spec, decay_factor, scale, bhsd, _ = inputs
    out, lse = output
    ctx.save_for_backward(q, k, v, out, lse)
    ctx.op_args = (geometry, spec, decay_factor, scale, bhsd)
    # The gradient flows through out only: a loss that uses lse gets no gradient from it (lse
    # has requires_grad False, so autograd says so rather than giving a wrong answer).
    ctx.mark_non_differentiable(lse)


def _backward(ctx, grad_out, grad_lse):
    q, k, v, out, lse = ctx.saved_tensors
    geometry, spec, decay_factor, scale, bhsd = ctx.op_args
    b, s, h, _ = _sizes(q, bhsd)
    if lse.shape != (b, h, s):
        # The forward ran without lse (need_lse False): recompute it. attention() and the
        # diffusers processors ask for it whenever a gradient may follow, so this is rare.
        _, lse = torch.ops.radial_attention.attention(q, k, v, geometry, spec, decay_factor,
                                                      scale, bhsd, True)
    dq, dk, dv = torch.ops.radial_attention.attention_backward(
        grad_out, q, k, v, out, lse, geometry, spec, decay_factor, scale, bhsd)
    return dq, dk, dv, None, None, None, None, None, None


_attention_op.register_autograd(_backward, setup_context=_setup_context)


def _wants_grad(*tensors) -> bool:
    """A gradient may follow, so the forward should keep its lse for the backward."""
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, plan, scale=None,
              layout: str = "bshd", return_lse: bool = False, precision: str = "native"):
    """Block-sparse attention under `plan`: softmax(scale * q k^T + mask) v.

    q, k, v: [batch, seq, heads, head_dim] (``layout="bshd"``) or [batch, heads, seq,
    head_dim] (``layout="bhsd"``), float32, bfloat16 or float16, on the CPU or one CUDA
    device; seq must be the plan's token count; dense (strided) tensors only. Any strides are
    read as they are; inputs whose head_dim is not contiguous, or that are expanded
    (broadcast, stride 0), are first copied to contiguous memory. ``scale`` defaults to 1 / sqrt(head_dim). Returns the output in q's layout,
    and with ``return_lse`` also the log-sum-exp, float32 [batch, heads, seq].

    Differentiable in q, k and v through the output (the library's backward pass, on the CPU
    and CUDA alike); lse is returned without a gradient (requires_grad False).

    ``precision="fp8"``: the FP8 forward (q and k in e4m3 with one scale per 128-token block, k
    smoothed by its mean, v with per-channel scales; docs/fp8.md) on CUDA devices of compute
    capability 9.0 (H100/H200), bf16 or float16, head_dim 64 or 128, block 128; inference only
    (refused when a gradient may follow), and refused by name elsewhere.
    """
    if isinstance(plan, _plan.Plan):
        key = plan.key
    elif isinstance(plan, _plan.PlanKey):
        key = plan
    else:
        raise invalid("plan", "a radial_attention.Plan (from radial_attention.plan())",
                      type(plan).__name__)
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise invalid(name, "a torch.Tensor", type(t).__name__)
        _require_strided(t, name)  # before the op: torch's dispatch would fail first, unclearly
    if layout not in _LAYOUTS:
        raise invalid("layout", '"bshd" or "bhsd"', repr(layout))
    if scale is None:
        scale_value = 0.0  # the library's 1 / sqrt(head_dim)
    else:
        if isinstance(scale, bool) or not isinstance(scale, (int, float)):
            raise invalid("scale", "a float > 0 or None", repr(scale))
        scale_value = float(scale)
        if not (math.isfinite(scale_value) and scale_value > 0):
            raise invalid("scale", "a finite float > 0 or None", scale)
    if precision not in _lib.PRECISIONS:
        raise invalid("precision", '"native" or "fp8"', repr(precision))
    geometry, spec, decay = key.op_args()
    if precision == "fp8":
        if _wants_grad(q, k, v):
            raise invalid("precision", '"native" when a gradient may follow (fp8 is a forward '
                          "precision; run it under torch.no_grad() or on tensors without "
                          "requires_grad)", '"fp8"')
        out, lse = torch.ops.radial_attention.attention_fp8(
            q, k, v, geometry, spec, decay, scale_value, layout == "bhsd", bool(return_lse))
        return (out, lse) if return_lse else out
    need_lse = bool(return_lse) or _wants_grad(q, k, v)
    out, lse = torch.ops.radial_attention.attention(q, k, v, geometry, spec, decay, scale_value,
                                                    layout == "bhsd", need_lse)
    return (out, lse) if return_lse else out


__all__ = ["attention", "RadialError"]
