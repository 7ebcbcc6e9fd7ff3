"""Runs a function on several CPU processes joined by a gloo process group, for the tests of
sequence parallelism. Workers are spawned (a fresh interpreter each), use one thread each
and send back what the function returns, or their traceback."""

import socket
import traceback


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _entry(fn, rank, world, port, results, args):
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    try:
        # "cpu:gloo" rather than "gloo": diffusers' uneven ("anything") Ulysses looks for
        # "cpu" in the backend's name to keep its size exchange off the (absent) GPU.
        dist.init_process_group("cpu:gloo", rank=rank, world_size=world,
                                init_method=f"tcp://127.0.0.1:{port}")
        results.put((rank, True, fn(rank, world, *args)))
    except BaseException:  # noqa: BLE001 - the parent reports it
        results.put((rank, False, traceback.format_exc()))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def run(world, fn, *args, timeout=300):
    """[fn(rank, world, *args) for each rank] from `world` processes (fn must be a module-level
    function of an importable module). A failing rank fails the call with its traceback."""
    import torch.multiprocessing as mp

    context = mp.get_context("spawn")
    results = context.Queue()
    port = free_port()
    processes = [context.Process(target=_entry, args=(fn, r, world, port, results, args))
                 for r in range(world)]
    for p in processes:
        p.start()
    try:
        got = {}
        for _ in processes:
            rank, ok, value = results.get(timeout=timeout)
            if not ok:
                raise AssertionError(f"rank {rank} of {world} failed:\n{value}")
            got[rank] = value
        return [got[r] for r in range(world)]
    finally:
        for p in processes:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()

