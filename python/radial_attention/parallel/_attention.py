"""Ulysses attention over a process group: the public calls and their argument checks."""

import math

import torch
import torch.distributed as dist

from .. import ops as _ops
from ..plan import Plan, PlanKey
from .._errors import invalid
from ._exchange import HeadsToSequence, Layout, SequenceToHeads

_LAYOUTS = ("bshd", "bhsd")


def group_size_rank(group=None):
    """(size, rank) of `group` (None: the default group), or a clear error when
    torch.distributed is not initialised."""
    if not (dist.is_available() and dist.is_initialized()):
        raise invalid("group", "an initialised torch.distributed process group "
                      "(torch.distributed.init_process_group, e.g. under torchrun)",
                      "torch.distributed not initialised")
    return dist.get_world_size(group), dist.get_rank(group)


def padded_shard_sizes(seq_len: int, world: int):
    """The real tokens of each rank's shard when every rank holds ceil(seq_len / world) rows
    and the last shards are padded at the end (the default of ulysses_attention)."""
    local = -(-seq_len // world)
    return [max(0, min(local, seq_len - r * local)) for r in range(world)]


def tensor_split_sizes(seq_len: int, world: int):
    """The shard sizes of torch.tensor_split(x, world) (diffusers' "Ulysses anything" split,
    and its even split when seq_len divides): the first seq_len % world ranks get one more."""
    base, extra = divmod(seq_len, world)
    return [base + (1 if r < extra else 0) for r in range(world)]


def _plan_tokens(plan):
    """(video tokens, text tokens) of a Plan or PlanKey."""
    if isinstance(plan, Plan):
        key = plan.key
    elif isinstance(plan, PlanKey):
        key = plan
    else:
        raise invalid("plan", "a radial_attention.Plan (from radial_attention.plan())",
                      type(plan).__name__)
    return key.frames * key.tokens_per_frame, key.text_tokens


def make_layout(q, k, v, video_tokens: int, text_tokens: int, group, shard_sizes, layout: str):
    """Checks one Ulysses call's arguments (each error names the argument) and returns its
    Layout. Every rank must make the same call with its own shard."""
    if layout not in _LAYOUTS:
        raise invalid("layout", '"bshd" or "bhsd"', repr(layout))
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise invalid(name, "a torch.Tensor", type(t).__name__)
        if t.dim() != 4:
            raise invalid(name, f"a 4-D tensor (layout \"{layout}\")", f"shape {tuple(t.shape)}")
    for name, t in (("k", k), ("v", v)):
        if t.shape != q.shape:
            raise invalid(f"{name}.shape", f"{tuple(q.shape)} (q.shape)", tuple(t.shape))
        if t.dtype != q.dtype:
            raise invalid(f"{name}.dtype", f"{q.dtype} (q.dtype)", t.dtype)
        if t.device != q.device:
            raise invalid(f"{name}.device", f"{q.device} (q.device)", t.device)
    world, rank = group_size_rank(group)
    if layout == "bhsd":
        b, h, s, d = q.shape
    else:
        b, s, h, d = q.shape
    if h < world:
        raise invalid("group size", f"at most {h} ranks (q's heads: each rank attends "
                      "ceil(heads / ranks) of them)", world)
    if shard_sizes is None:
        real = padded_shard_sizes(video_tokens, world)
        local = -(-video_tokens // world)
        how = (f"ceil({video_tokens} video tokens / {world} ranks) = {local}, padded at the "
               "end where they do not divide")
    else:
        real = list(shard_sizes)
        if (len(real) != world or any(isinstance(r, bool) or not isinstance(r, int) or r < 0
                                      for r in real) or sum(real) != video_tokens):
            raise invalid("shard_sizes", f"{world} ints >= 0 (one per rank) adding up to the "
                          f"plan's {video_tokens} video tokens", list(shard_sizes))
        local = real[rank]
        how = f"shard_sizes[{rank}] = {local}"
    if s != local + text_tokens:
        text = f" + {text_tokens} text tokens" if text_tokens else ""
        raise invalid("q.seq", f"{local + text_tokens} on rank {rank} ({how}{text})", s)
    return Layout(group=group, world=world, rank=rank, batch=b, heads=h,
                  heads_local=-(-h // world), dim=d, local_len=local, real=tuple(real),
                  text=text_tokens)


def ulysses_apply(attend, q, k, v, *, video_tokens: int, text_tokens: int = 0, group=None,
                  shard_sizes=None, layout: str = "bshd"):
    """Ulysses around any attention: ``attend(q, k, v) -> out`` gets [B, S + T, heads, D]
    tensors (every token, this rank's share of the heads; strided views) and returns the
    output in that shape. q, k, v are this rank's shard of the video tokens followed by the
    text tokens (replicated on every rank). Differentiable when ``attend`` is."""
    info = make_layout(q, k, v, video_tokens, text_tokens, group, shard_sizes, layout)
    if layout == "bhsd":
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
    q, k, v = (SequenceToHeads.apply(t, info) for t in (q, k, v))
    out = HeadsToSequence.apply(attend(q, k, v), info)
    return out.transpose(1, 2) if layout == "bhsd" else out


def ulysses_attention(q, k, v, plan, group=None, *, scale=None, layout: str = "bshd",
                      shard_sizes=None):
    """Radial attention under `plan`, the sequence sharded over `group` (Ulysses).

    Each rank passes its shard of the sequence: q, k, v [batch, local, heads, head_dim]
    (``layout="bhsd"``: [batch, heads, local, head_dim]). Shards follow the token order of
    the plan: rank r holds video tokens [r * local, (r + 1) * local) with
    ``local = ceil(video tokens / ranks)``, the last shards padded at the end where the
    count does not divide (any values: padding never reaches the kernel, and its output rows
    and gradients are zero). ``shard_sizes`` (one int per rank, e.g.
    :func:`tensor_split_sizes`) gives uneven shards instead, without padding. Text tokens
    (HunyuanVideo's joint attention) follow the shard on every rank, all of them, the same
    on every rank; their output is all of the text's output, on every rank.

    Heads: after the exchange each rank attends ceil(heads / ranks) heads; where the count
    does not divide, zero heads fill the last ranks (computed and dropped: heads padded to a
    multiple of the group, e.g. 40 heads on 3 ranks cost 42). A group larger than the head
    count is refused.

    Returns the output for this rank's shard in q's layout. Differentiable (forward and
    backward exchange): gradients of the shard land on its rank; text gradients are partial
    per rank (sum them over the group, as for any replicated tensor).
    """
    video, text = _plan_tokens(plan)
    if scale is not None and (isinstance(scale, bool) or not isinstance(scale, (int, float))
                              or not (math.isfinite(float(scale)) and float(scale) > 0)):
        raise invalid("scale", "a finite float > 0 or None", repr(scale))

    def attend(qh, kh, vh):
        return _ops.attention(qh, kh, vh, plan, scale=scale)

    return ulysses_apply(attend, q, k, v, video_tokens=video, text_tokens=text, group=group,
                         shard_sizes=shard_sizes, layout=layout)


def shard(x: torch.Tensor, group=None, dim: int = 1, seq_len=None, shard_sizes=None):
    """This rank's shard of a full sequence x (along `dim`), in ulysses_attention's layout:
    ceil(seq_len / ranks) rows, zero-padded at the end of the last shards (or the rows of
    ``shard_sizes``). ``seq_len``: the tokens to shard (default: all of x along dim)."""
    world, rank = group_size_rank(group)
    seq_len = x.shape[dim] if seq_len is None else seq_len
    if shard_sizes is None:
        local = -(-seq_len // world)
        start = min(rank * local, seq_len)
        piece = x.narrow(dim, start, min(local, seq_len - start))
        if piece.shape[dim] == local:
            return piece
        pad = list(piece.shape)
        pad[dim] = local - piece.shape[dim]
        return torch.cat([piece, piece.new_zeros(pad)], dim=dim)
    if len(shard_sizes) != world or sum(shard_sizes) != seq_len:
        raise invalid("shard_sizes", f"{world} ints adding up to {seq_len}", list(shard_sizes))
    start = sum(shard_sizes[:rank])
    return x.narrow(dim, start, shard_sizes[rank])


class _Gather(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, group, dim, real):
        ctx.group, ctx.dim, ctx.local, ctx.real = group, dim, x.shape[dim], real
        ctx.rank = dist.get_rank(group)
        world = dist.get_world_size(group)
        rows = max(real)  # every rank's rows (shards padded to one size for all_gather)
        if x.shape[dim] != rows:
            pad = list(x.shape)
            pad[dim] = rows - x.shape[dim]
            x = torch.cat([x, x.new_zeros(pad)], dim=dim)
        parts = [torch.empty_like(x) for _ in range(world)]
        dist.all_gather(parts, x.contiguous(), group=group)
        return torch.cat([p.narrow(dim, 0, r) for p, r in zip(parts, real)], dim=dim)

    @staticmethod
    def backward(ctx, grad):
        start = sum(ctx.real[:ctx.rank])
        piece = grad.narrow(ctx.dim, start, ctx.real[ctx.rank])
        if piece.shape[ctx.dim] != ctx.local:  # padding rows: zero gradient
            pad = list(piece.shape)
            pad[ctx.dim] = ctx.local - piece.shape[ctx.dim]
            piece = torch.cat([piece, piece.new_zeros(pad)], dim=ctx.dim)
        return piece, None, None, None


def gather(x: torch.Tensor, seq_len: int, group=None, dim: int = 1, shard_sizes=None):
    """The full sequence (seq_len tokens along `dim`) from every rank's shard, padding
    dropped: the inverse of :func:`shard`. Differentiable (each rank gets its rows back)."""
    world, _ = group_size_rank(group)
    real = padded_shard_sizes(seq_len, world) if shard_sizes is None else list(shard_sizes)
    return _Gather.apply(x, group, dim, real)
