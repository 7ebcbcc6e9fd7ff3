"""Parameter gradients under sequence parallelism: each rank's backward gives the part of
every gradient that its sequence shard contributes; their sum over the group is the gradient
of the whole sequence."""

import torch
import torch.distributed as dist


def sum_gradients(parameters, group=None) -> None:
    """Sums the .grad of `parameters` (a module or an iterable of tensors) over `group`, in
    place, with one all-reduce per dtype (gradients flattened into one buffer). Call it after
    backward and before the optimizer step, on every rank. The model must be replicated
    (the same weights on every rank), as diffusers' context parallelism keeps it; under
    data parallelism on top, average over the data-parallel group afterwards as usual."""
    if isinstance(parameters, torch.nn.Module):
        parameters = parameters.parameters()
    grads = [p.grad for p in parameters if p.grad is not None]
    by_dtype = {}
    for g in grads:
        by_dtype.setdefault((g.dtype, g.device), []).append(g)
    for same in by_dtype.values():
        flat = torch.cat([g.reshape(-1) for g in same])
        dist.all_reduce(flat, group=group)
        offset = 0
        for g in same:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()
