"""Process-group set-up for tools run under torchrun, and the error path that keeps a failing
rank from leaving the others waiting in a collective."""

import contextlib
import datetime
import os
import sys
import traceback
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .._errors import invalid


@dataclass(frozen=True)
class Distributed:
    rank: int            # global rank (rank 0 writes files)
    world: int           # processes in the group (the Ulysses degree)
    local_rank: int      # this process's GPU on its host
    device: torch.device
    backend: str         # "nccl" on GPUs, "cpu:gloo" on CPUs

    @property
    def is_writer(self) -> bool:
        return self.rank == 0


def init_from_torchrun(ulysses: int, device=None, timeout_s: float = 900.0) -> Distributed:
    """Joins the process group torchrun set up (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR in
    the environment): NCCL with one GPU per process (cuda:LOCAL_RANK) where CUDA is present,
    gloo on the CPU otherwise. ``ulysses`` must equal the number of processes.
    ``timeout_s`` bounds any collective (the last line of defence against a hang)."""
    if isinstance(ulysses, bool) or not isinstance(ulysses, int) or ulysses < 1:
        raise invalid("ulysses", "an int >= 1", repr(ulysses))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if "WORLD_SIZE" not in os.environ and ulysses > 1:
        raise invalid("ulysses", f"1 outside torchrun (run `torchrun --nproc-per-node {ulysses} "
                      "...` for more)", ulysses)
    if world != ulysses:
        raise invalid("ulysses", f"the number of processes torchrun started ({world}; "
                      "--nproc-per-node x --nnodes)", ulysses)
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise invalid("LOCAL_RANK", f"< {torch.cuda.device_count()} (the GPUs visible to "
                          "this process: one process per GPU)", local_rank)
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        # "cpu:gloo": diffusers' uneven Ulysses looks for "cpu" in the backend's name to keep
        # its size exchange off an accelerator.
        backend = "cpu:gloo"
    if not dist.is_initialized():
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", "29500")
        os.environ.setdefault("RANK", str(rank))
        os.environ.setdefault("WORLD_SIZE", str(world))
        kwargs = {"device_id": device} if backend == "nccl" else {}
        dist.init_process_group(backend, rank=rank, world_size=world,
                                timeout=datetime.timedelta(seconds=timeout_s), **kwargs)
    return Distributed(rank, world, local_rank, device, backend)


def abort() -> None:
    """Tears this process out of its process group without waiting for the others (NCCL:
    aborts the communicators, so no kernel waits on a peer that will not come)."""
    if not (dist.is_available() and dist.is_initialized()):
        return
    try:
        abort_group = getattr(dist.distributed_c10d, "_abort_process_group", None)
        if abort_group is not None:
            abort_group()
        else:  # pragma: no cover - older torch
            dist.destroy_process_group()
    except Exception:  # noqa: BLE001 - already failing; the original error matters
        pass


@contextlib.contextmanager
def stop_on_error(rank=None):
    """Around a rank's work: an exception prints ``[rank R] ...`` with its traceback, aborts
    the process group and propagates (the process then exits non-zero). torchrun stops the
    other ranks when one exits with an error; over gloo, the others' pending collectives
    fail at once when the peer's connections close. Either way they stop instead of waiting
    in a collective until its timeout."""
    try:
        yield
    except BaseException as error:
        if isinstance(error, SystemExit) and error.code in (0, None):
            raise
        r = rank if rank is not None else (dist.get_rank() if dist.is_initialized() else 0)
        lines = traceback.format_exception(type(error), error, error.__traceback__)
        sys.stderr.write("".join(f"[rank {r}] {line}" for chunk in lines
                                 for line in chunk.splitlines(keepends=True)))
        sys.stderr.flush()
        abort()
        raise
