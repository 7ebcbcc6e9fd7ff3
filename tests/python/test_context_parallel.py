"""Wan and HunyuanVideo under diffusers' Ulysses context parallelism (set up by
radial_attention.parallel.enable_ulysses): 2 and 4 CPU processes (gloo) give what one process
gives, through the dense (stock) layer and the radial ones; sequences that do not divide by
the group; HunyuanVideo's text with padding (two batch elements of different valid lengths)."""

import pytest
import torch

import distributed

pytest.importorskip("diffusers")

WORLDS = (2, 4)
WORLD = 2  # test_backward_diffusers.py's training test uses these two
free_port = distributed.free_port
# name: (input kwargs, ulysses_anything). Sequences that do not divide by the group need
# diffusers' uneven ("anything") split, whose output gather takes uneven sizes on NCCL but not
# on gloo: the tails of the radial exchange itself are tested in test_ulysses.py.
WAN_CASES = {
    "4 frames": (dict(frames=4, seed=3), False),
    "2 frames, batch 2": (dict(frames=2, batch=2, seed=4), False),
}


def run_tiny_wan(inputs, world=1, ulysses_anything=False):
    import radial_attention.diffusers as radial
    import tiny_models
    from radial_attention import parallel

    model = tiny_models.wan_transformer(heads=4)
    state = radial.apply(model, dense_layers=1, dense_timesteps=0, block_size=64, decay_factor=0.5)
    if world > 1:
        parallel.enable_ulysses(model, ulysses_anything=ulysses_anything)
    with torch.no_grad():
        out = model(**tiny_models.wan_inputs(**inputs), return_dict=False)[0]
    return out, dict(state.calls)


def run_tiny_hunyuan(world=1, dense_layers=1, frames=5):
    import radial_attention.diffusers as radial
    import tiny_models
    from radial_attention import parallel

    model = tiny_models.hunyuan_transformer(heads=4)
    state = radial.apply(model, dense_layers=dense_layers, dense_timesteps=0, block_size=64,
                         decay_factor=0.9)
    if world > 1:
        parallel.enable_ulysses(model)
    with torch.no_grad():
        out = model(**tiny_models.hunyuan_inputs(frames=frames, valid=(9, 5)), return_dict=False)[0]
    return out, dict(state.calls)


def wan_worker(rank, world):
    return {name: tuple(x.numpy() if torch.is_tensor(x) else x
                        for x in run_tiny_wan(inputs, world, anything))
            for name, (inputs, anything) in WAN_CASES.items()}


def hunyuan_worker(rank, world, dense_layers):
    out, calls = run_tiny_hunyuan(world, dense_layers)
    return out.numpy(), calls


def close(got, expected):
    got = torch.from_numpy(got)
    return float((got - expected).abs().max()) <= 1e-5 * float(expected.abs().max())


@pytest.mark.parametrize("world", WORLDS)
def test_wan_ulysses_matches_one_process(world):
    expected = {name: run_tiny_wan(inputs) for name, (inputs, _) in WAN_CASES.items()}
    for name, (_, calls) in expected.items():
        assert calls == {"stock": 1, "radial": 2}, name
    for rank, found in enumerate(distributed.run(world, wan_worker)):
        for name, (out, calls) in found.items():
            assert calls == expected[name][1], (rank, name)
            assert close(out, expected[name][0]), (rank, name)


@pytest.mark.parametrize("world", WORLDS)
def test_hunyuan_ulysses_matches_one_process(world):
    """Dense first layer (diffusers' Ulysses with the text mask) and radial layers (ours,
    the text replicated): 320 video tokens and 12 text tokens, 9 and 5 of them valid."""
    expected, calls = run_tiny_hunyuan()
    assert calls == {"stock": 1, "radial": 3}  # processor calls (each runs one plan per element)
    for rank, (out, rank_calls) in enumerate(distributed.run(world, hunyuan_worker, 1)):
        assert rank_calls == calls, rank
        assert close(out, expected), rank


def ring_worker(rank, world):
    """diffusers' own enable path with ring attention: our radial layers refuse it by name."""
    import radial_attention.diffusers as radial
    import tiny_models
    from diffusers.hooks.context_parallel import apply_context_parallel
    from diffusers.models._modeling_parallel import ContextParallelConfig, ParallelConfig
    from torch.distributed.device_mesh import init_device_mesh

    from radial_attention import RadialError

    model = tiny_models.wan_transformer(heads=4)
    radial.apply(model, dense_layers=0, dense_timesteps=0, block_size=64)
    mesh = init_device_mesh("cpu", (world, 1), mesh_dim_names=("ring", "ulysses"))
    config = ParallelConfig(context_parallel_config=ContextParallelConfig(ring_degree=world))
    config.setup(rank, world, torch.device("cpu"), mesh=mesh)
    model._parallel_config = config
    for module in model.modules():
        if hasattr(getattr(module, "processor", None), "_parallel_config"):
            module.processor._parallel_config = config
    apply_context_parallel(model, config.context_parallel_config, model._cp_plan)
    try:
        with torch.no_grad():
            model(**tiny_models.wan_inputs(frames=4), return_dict=False)
    except RadialError as error:
        return error.argument, str(error)
    return None


def test_ring_attention_is_refused_clearly():
    for found in distributed.run(2, ring_worker):
        assert found is not None
        argument, message = found
        assert argument == "context_parallel_config.ring_degree"
        assert "ring attention splits the keys" in message and message.endswith("got 2")


def bad_group_worker(rank, world):
    import tiny_models
    from radial_attention import RadialError, parallel

    found = []
    for model in (tiny_models.wan_transformer(heads=2),  # 2 heads over 4 ranks
                  tiny_models.hunyuan_transformer(heads=4, image_condition_type="token_replace")):
        try:
            parallel.enable_ulysses(model)
            found.append(None)
        except RadialError as error:
            found.append((error.argument, str(error)))
    return found


def test_heads_that_do_not_divide_and_token_replacement_are_refused():
    for heads, token_replace in distributed.run(4, bad_group_worker):
        assert heads is not None and token_replace is not None
        argument, message = heads
        assert argument == "group size"
        assert "a divisor of the model's 2 attention heads" in message and message.endswith("got 4")
        argument, message = token_replace
        assert argument == "model_or_pipeline"
        assert "without token replacement" in message and "token_replace" in message


def train_grads(family, world):
    """Parameter gradients of one training step (gradient checkpointing on), summed over
    the group with parallel.sum_gradients when sequence-parallel."""
    import radial_attention.diffusers as radial
    import tiny_models
    from radial_attention import parallel

    if family == "wan":
        model = tiny_models.wan_transformer(heads=2).train()
        inputs = tiny_models.wan_inputs(frames=4, seed=3)
    else:
        model = tiny_models.hunyuan_transformer(heads=2).train()
        inputs = tiny_models.hunyuan_inputs(frames=4, valid=(9, 5), seed=3)
    model.enable_gradient_checkpointing()
    radial.apply(model, dense_layers=1, dense_timesteps=0, block_size=64, decay_factor=0.5)
    if world > 1:
        parallel.enable_ulysses(model)
    out = model(**inputs, return_dict=False)[0]
    target = torch.randn(out.shape, generator=torch.Generator().manual_seed(7))
    ((out - target) ** 2).mean().backward()
    if world > 1:
        parallel.sum_gradients(model)
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def train_worker(rank, world, family):
    return {n: g.numpy() for n, g in train_grads(family, world).items()}


@pytest.mark.parametrize("family", ["wan", "hunyuan"])
def test_training_gradients_summed_equal_one_process(family):
    """A LoRA-style training step sequence-parallel: every rank's summed parameter gradients
    equal one process's (HunyuanVideo: its text stream replicated, dense and radial layers)."""
    expected = train_grads(family, 1)
    floor = 1e-3 * max(float(g.abs().max()) for g in expected.values())
    for rank, got in enumerate(distributed.run(2, train_worker, family)):
        assert got.keys() == expected.keys(), rank
        worst = max(float((torch.from_numpy(got[n]) - expected[n]).abs().max())
                    / max(float(expected[n].abs().max()), floor) for n in expected)
        assert worst < 1e-4, (rank, worst)


def two_groups_worker(rank, world):
    """Two Ulysses groups of 2 over 4 processes (data parallelism on top): each group runs
    the tiny Wan on its own sample; its ranks agree with one process on that sample."""
    import radial_attention.diffusers as radial
    import tiny_models
    from radial_attention import RadialError, parallel

    model = tiny_models.wan_transformer(heads=4)
    radial.apply(model, dense_layers=1, dense_timesteps=0, block_size=64, decay_factor=0.5)
    config = parallel.enable_ulysses(model, degree=2)
    group = config.context_parallel_config._ulysses_mesh.get_group()
    members = torch.distributed.get_process_group_ranks(group)
    with torch.no_grad():
        out = model(**tiny_models.wan_inputs(frames=4, seed=10 + rank // 2), return_dict=False)[0]
    try:
        parallel.ulysses_mesh(3, "cpu")
        refused = None
    except RadialError as error:
        refused = str(error)
    return members, out.numpy(), refused


def test_ulysses_groups_under_data_parallelism():
    outs = distributed.run(4, two_groups_worker)
    for rank, (members, out, refused) in enumerate(outs):
        assert members == [rank // 2 * 2, rank // 2 * 2 + 1]
        expected, _ = run_tiny_wan(dict(frames=4, seed=10 + rank // 2))
        assert close(out, expected), rank
        assert refused == "radial: degree: expected a divisor of the 4 processes, got 3"
