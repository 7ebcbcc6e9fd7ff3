"""Ulysses sequence parallelism for radial attention, on torch.distributed (NCCL, gloo).

A long video is split along its tokens over the ranks of a process group. Around each
attention, an all-to-all turns the sequence shards into head shards (every rank then holds
the whole sequence for ceil(heads / ranks) heads), the radial kernel runs with the same plan
on every rank (the mask is the same for every head, so no rank waits on another), and a
second all-to-all turns the output back into sequence shards. Kernels never know about ranks.

    import torch.distributed as dist
    import radial_attention as ra
    from radial_attention import parallel

    dist.init_process_group("nccl")                    # e.g. under torchrun
    plan = ra.plan(frames=21, tokens_per_frame=3600, model="wan", decay_factor=0.2)
    q, k, v = (parallel.shard(t) for t in (q_full, k_full, v_full))   # [B, local, H, D]
    out = parallel.ulysses_attention(q, k, v, plan)    # this rank's rows, every head
    full = parallel.gather(out, plan.seq_len)

Forward and backward (the exchanges are autograd functions; the attention's own backward
comes from the op). Sequences that do not divide by the group are padded at the end of the
last shards (or sharded unevenly with ``shard_sizes``); padding never reaches the kernel.
Head counts that do not divide are padded with zero heads on the last ranks. HunyuanVideo's
text tokens are replicated on every rank and keep their exact meaning.

diffusers models (Wan, HunyuanVideo): :func:`enable_ulysses`. Processes launched by torchrun:
:func:`init_from_torchrun` and :func:`stop_on_error` (a failing rank stops the others with
its error rather than leaving them waiting in a collective).
"""

from ._attention import (gather, padded_shard_sizes, shard, tensor_split_sizes, ulysses_apply,
                         ulysses_attention)
from ._gradients import sum_gradients
from ._launch import Distributed, init_from_torchrun, stop_on_error

__all__ = ["Distributed", "enable_ulysses", "ulysses_mesh", "gather", "init_from_torchrun",
           "padded_shard_sizes", "shard", "stop_on_error", "sum_gradients", "tensor_split_sizes",
           "ulysses_apply", "ulysses_attention"]


def enable_ulysses(model_or_pipeline, degree=None, ulysses_anything=False, mesh=None):
    """diffusers' context parallelism (Ulysses) on a Wan or HunyuanVideo transformer or
    pipeline; see :func:`radial_attention.parallel._diffusers.enable_ulysses`."""
    from ._diffusers import enable_ulysses as enable

    return enable(model_or_pipeline, degree=degree, ulysses_anything=ulysses_anything, mesh=mesh)


def ulysses_mesh(degree=None, device_type="cuda"):
    """DeviceMesh ("data", "ring", "ulysses") of Ulysses groups of `degree` consecutive ranks;
    see :func:`radial_attention.parallel._diffusers.ulysses_mesh`."""
    from ._diffusers import ulysses_mesh as make

    return make(degree, device_type)
