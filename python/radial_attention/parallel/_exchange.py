"""The two Ulysses exchanges, as autograd functions: sequence shards -> head shards (before
attention) and back (after it). Each is the other's transpose, so each one's backward is the
other's forward.

Memory layout, chosen so that the exchanges need no copy beyond the one that packs the send
buffer (and, after the second exchange, the one that puts the heads back in place):

- Send buffer of the first exchange: [P, n, B, Hp, D] (chunk p: this rank's n real tokens,
  the heads of rank p). Its receive buffer is [S + T, B, Hp, D]: every rank's tokens in rank
  order, then room for the text. Read as [B, S + T, Hp, D] through strides, it goes to the
  attention kernel as it is (the kernel takes any strides with the head dim contiguous).
- The attention output [B, S + T, Hp, D] (contiguous) is the second exchange's send buffer
  with no copy when B == 1 (its rows are then already in [S, B, Hp, D] order); it lands as
  [P, n, B, Hp, D] and one copy puts it into the caller's [B, L + T, H, D].

Uneven shards cost nothing here: the exchanges carry each rank's real tokens with per-rank
split sizes, so padding tokens never leave their rank and never reach the kernel.

Text tokens (joint attention) are replicated on every rank and never exchanged: each rank
takes its heads of them locally, and gathers every rank's heads of their output. Their
gradients are therefore partial per rank (as for anything replicated under sequence
parallelism): the backward of the gather sums them over the group.
"""

from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Layout:
    """How one attention's tokens and heads lie over the group (the same on every rank)."""

    group: object          # torch.distributed ProcessGroup
    world: int             # P
    rank: int              # this rank's index in the group
    batch: int             # B
    heads: int             # H (all heads)
    heads_local: int       # Hp = ceil(H / P): heads per rank after the exchange (padded)
    dim: int               # D
    local_len: int         # L: this rank's sequence rows (shard plus padding)
    real: tuple            # real tokens of each rank's shard (sum: S)
    text: int              # T: replicated tokens after the shard

    @property
    def seq(self) -> int:
        return sum(self.real)

    def own_heads(self, p: int):
        """[h0, h1): the real heads rank p attends (h1 - h0 < Hp where heads are padded)."""
        h0 = min(p * self.heads_local, self.heads)
        return h0, min(h0 + self.heads_local, self.heads)


def _pack(rows: torch.Tensor, layout: Layout) -> torch.Tensor:
    """[B, n, H, D] (any strides) -> contiguous [P, n, B, Hp, D], padded heads zero."""
    P, Hp = layout.world, layout.heads_local
    b, n, h, d = rows.shape
    send = rows.new_empty((P, n, b, Hp, d))
    if P * Hp == h:  # one copy
        send.copy_(rows.unflatten(2, (P, Hp)).permute(2, 1, 0, 3, 4))
        return send
    for p in range(P):
        h0, h1 = layout.own_heads(p)
        send[p, :, :, : h1 - h0].copy_(rows[:, :, h0:h1].transpose(0, 1))
        send[p, :, :, h1 - h0:].zero_()
    return send


def _unpack(recv: torch.Tensor, rows: torch.Tensor, layout: Layout) -> None:
    """contiguous [P, n, B, Hp, D] -> rows [B, n, H, D] (written in place; padded heads dropped)."""
    P, Hp = layout.world, layout.heads_local
    if P * Hp == layout.heads:
        rows.unflatten(2, (P, Hp)).copy_(recv.permute(2, 1, 0, 3, 4))
        return
    for p in range(P):
        h0, h1 = layout.own_heads(p)
        rows[:, :, h0:h1].copy_(recv[p, :, :, : h1 - h0].transpose(0, 1))


def _own_text(text: torch.Tensor, out: torch.Tensor, layout: Layout) -> None:
    """text [B, T, H, D] -> out [T, B, Hp, D]: this rank's heads, padded heads zero."""
    h0, h1 = layout.own_heads(layout.rank)
    out[:, :, : h1 - h0].copy_(text[:, :, h0:h1].transpose(0, 1))
    out[:, :, h1 - h0:].zero_()


def _all_to_all(recv: torch.Tensor, send: torch.Tensor, recv_rows, send_rows, layout: Layout):
    """One exchange of [rows, Hp * D] buffers, rank p's part of send going to rank p."""
    width = layout.heads_local * layout.dim
    # Explicit row counts: a rank with no tokens has empty buffers, which view(-1, ...) refuses.
    dist.all_to_all_single(recv.view(recv.numel() // width, width),
                           send.view(send.numel() // width, width),
                           output_split_sizes=[r * layout.batch for r in recv_rows],
                           input_split_sizes=[r * layout.batch for r in send_rows],
                           group=layout.group)


def sequence_to_heads(x: torch.Tensor, layout: Layout, text_mode: str) -> torch.Tensor:
    """x [B, L + T, H, D] (this rank's shard, then the text) -> [B, S + T, Hp, D] (every
    token, this rank's heads; a strided view of a fresh [S + T, B, Hp, D] buffer).
    text_mode "own": the text is replicated, take this rank's heads of it; "sum": the text
    is a per-rank partial (a gradient), sum it over the group first."""
    n = layout.real[layout.rank]
    L, S, T = layout.local_len, layout.seq, layout.text
    recv = x.new_empty((S + T, layout.batch, layout.heads_local, layout.dim))
    _all_to_all(recv[:S], _pack(x[:, :n], layout), layout.real, [n] * layout.world, layout)
    if T:
        text = x[:, L:]
        if text_mode == "sum":
            text = text.clone(memory_format=torch.contiguous_format)  # reduced in place
            dist.all_reduce(text, group=layout.group)
        _own_text(text, recv[S:], layout)
    return recv.transpose(0, 1)


def heads_to_sequence(o: torch.Tensor, layout: Layout, text_mode: str) -> torch.Tensor:
    """o [B, S + T, Hp, D] (every token, this rank's heads) -> [B, L + T, H, D] (this rank's
    shard with every head, padding rows zero, then the text). text_mode "gather": every
    rank's heads of the text output, gathered; "own": only this rank's heads, the others
    zero (the gradient of the replicated text input, which summed over ranks is the total)."""
    n = layout.real[layout.rank]
    P, L, S, T = layout.world, layout.local_len, layout.seq, layout.text
    B, H, Hp, D = layout.batch, layout.heads, layout.heads_local, layout.dim
    send = o[:, :S].transpose(0, 1)
    if not send.is_contiguous():  # B > 1, or a strided o: the one packing copy
        send = send.contiguous()
    recv = o.new_empty((P, n, B, Hp, D))
    _all_to_all(recv, send, [n] * P, layout.real, layout)
    out = o.new_empty((B, L + T, H, D))
    _unpack(recv, out[:, :n], layout)
    out[:, n:L].zero_()
    if T:
        text = o[:, S:].transpose(0, 1).contiguous()  # [T, B, Hp, D], small
        if text_mode == "gather":
            gathered = o.new_empty((P * T, B, Hp, D))  # rank-major, as gloo wants it
            dist.all_gather_into_tensor(gathered, text, group=layout.group)
            _unpack(gathered.view(P, T, B, Hp, D), out[:, L:], layout)
        else:
            out[:, L:].zero_()
            h0, h1 = layout.own_heads(layout.rank)
            out[:, L:, h0:h1].copy_(text[:, :, : h1 - h0].transpose(0, 1))
    return out


class SequenceToHeads(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, layout):
        ctx.layout = layout
        return sequence_to_heads(x, layout, "own")

    @staticmethod
    def backward(ctx, grad):
        return heads_to_sequence(grad, ctx.layout, "own"), None


class HeadsToSequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, o, layout):
        ctx.layout = layout
        return heads_to_sequence(o, layout, "gather")

    @staticmethod
    def backward(ctx, grad):
        return sequence_to_heads(grad, ctx.layout, "sum"), None
