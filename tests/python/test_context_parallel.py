"""Wan under diffusers' Ulysses context parallelism: two CPU processes (gloo) give what one
process gives, through the dense (stock) layer and the radial ones."""

import socket

import pytest
import torch

pytest.importorskip("diffusers")

WORLD = 2


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_tiny_wan(parallel_config=None):
    import radial_attention.diffusers as radial
    import tiny_models

    model = tiny_models.wan_transformer(heads=2)
    inputs = tiny_models.wan_inputs(frames=4, seed=3)
    state = radial.apply(model, dense_layers=1, dense_timesteps=0, block_size=64, decay_factor=0.5)
    if parallel_config is not None:
        # What ModelMixin.enable_parallelism does, minus its accelerator lookup (no GPU here).
        from diffusers.hooks.context_parallel import apply_context_parallel

        model._parallel_config = parallel_config
        for module in model.modules():
            processor = getattr(module, "processor", None)
            if processor is not None and hasattr(processor, "_parallel_config"):
                processor._parallel_config = parallel_config
        apply_context_parallel(model, parallel_config.context_parallel_config, model._cp_plan)
    with torch.no_grad():
        out = model(**inputs, return_dict=False)[0]  # as pipelines call it
    return out, dict(state.calls)


def worker(rank, port, results):
    import torch.distributed as dist
    from diffusers.models._modeling_parallel import ContextParallelConfig, ParallelConfig
    from torch.distributed.device_mesh import init_device_mesh

    dist.init_process_group("gloo", rank=rank, world_size=WORLD,
                            init_method=f"tcp://127.0.0.1:{port}")
    try:
        mesh = init_device_mesh("cpu", (1, WORLD), mesh_dim_names=("ring", "ulysses"))
        config = ParallelConfig(context_parallel_config=ContextParallelConfig(ulysses_degree=WORLD))
        config.setup(rank, WORLD, torch.device("cpu"), mesh=mesh)
        out, calls = run_tiny_wan(config)
        results.put((rank, out.numpy(), calls))
    finally:
        dist.destroy_process_group()


def test_ulysses_matches_one_process():
    import torch.multiprocessing as mp

    expected, calls = run_tiny_wan()
    assert calls == {"stock": 1, "radial": 2}
    context = mp.get_context("spawn")
    results = context.Queue()
    port = free_port()
    processes = [context.Process(target=worker, args=(r, port, results)) for r in range(WORLD)]
    for p in processes:
        p.start()
    try:
        got = sorted(results.get(timeout=240) for _ in processes)
    finally:
        for p in processes:
            p.join(timeout=60)
    assert [rank for rank, _, _ in got] == list(range(WORLD))
    for _, out, rank_calls in got:
        assert rank_calls == calls
        out = torch.from_numpy(out)
        assert float((out - expected).abs().max()) <= 1e-6 * float(expected.abs().max())
