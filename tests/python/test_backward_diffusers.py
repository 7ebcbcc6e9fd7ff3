"""radial_attention.diffusers in training mode: tiny random Wan and HunyuanVideo transformers
with gradient checkpointing of their blocks. The independent check: the parameter gradients
of the radial model equal those of the stock model given the plan's token mask (diffusers'
own SDPA attention and autograd)."""

import pytest
import torch

pytest.importorskip("diffusers")

import radial_attention as ra  # noqa: E402
import radial_attention.diffusers as radial  # noqa: E402
import tiny_models  # noqa: E402
from test_diffusers import MaskedStock  # noqa: E402


def train_step(model, inputs, seed):
    """Gradients of every parameter for a fixed random loss on the output."""
    model.zero_grad(set_to_none=True)
    out = model(**inputs, return_dict=False)[0]  # as pipelines call it
    target = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed))
    ((out - target) ** 2).mean().backward()
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def masked_step(model, attentions, masks, inputs, seed):
    originals = [(a, a.processor) for _, a in attentions]
    try:
        for (_, a), mask in zip(attentions, masks):
            if mask is not None:
                a.set_processor(MaskedStock(a.processor, mask))
        return train_step(model, inputs, seed)
    finally:
        for a, p in originals:
            a.set_processor(p)


def assert_same_grads(got, expected, bound):
    assert got.keys() == expected.keys()
    # Relative to each parameter's largest gradient, but no finer than 1e-3 of the largest of
    # all: some gradients are zero up to rounding (a key projection's bias cannot change a
    # softmax), and their rounding noise has no meaningful relative error.
    floor = 1e-3 * max(float(g.abs().max()) for g in expected.values())
    worst = max(float((got[n] - expected[n]).abs().max()) / max(float(expected[n].abs().max()), floor)
                for n in expected)
    assert worst < bound, worst
    # Attention weights upstream of the radial layers really receive gradient.
    assert all(expected[n].abs().max() > 0 for n in expected if "attn1.to_q" in n or "attn.to_q" in n)


@pytest.mark.parametrize("checkpointing", [True, False], ids=["checkpointed", "plain"])
def test_wan_training_gradients_equal_masked_stock(checkpointing, seed):
    model = tiny_models.wan_transformer().train()
    if checkpointing:
        model.enable_gradient_checkpointing()
    inputs = tiny_models.wan_inputs(frames=5, height=16, width=16, seed=seed)
    state = radial.apply(model, dense_layers=1, dense_timesteps=0, block_size=64, decay_factor=0.5)
    got = train_step(model, inputs, seed)
    # With checkpointing each radial layer runs again in the backward pass.
    assert state.calls == ({"stock": 2, "radial": 4} if checkpointing else {"stock": 1, "radial": 2})
    radial.remove(model)
    frames, tokens = state.geometry
    plan = ra.plan(frames=frames, tokens_per_frame=tokens, model="wan", decay_factor=0.5,
                   block_size=64)
    assert plan.density < 1.0
    mask = plan.token_mask()
    expected = masked_step(model, [(i, b.attn1) for i, b in enumerate(model.blocks)],
                           [None, mask, mask], inputs, seed)
    assert_same_grads(got, expected, 1e-4)


def test_hunyuan_training_gradients_equal_masked_stock(seed):
    valid = (9, 5)  # padded text keys, a different count per batch element
    model = tiny_models.hunyuan_transformer().train()
    model.enable_gradient_checkpointing()
    inputs = tiny_models.hunyuan_inputs(frames=6, height=16, width=16, valid=valid, seed=seed)
    state = radial.apply(model, dense_layers=1, dense_timesteps=0, block_size=64,
                         decay_factor=0.5)
    got = train_step(model, inputs, seed)
    radial.remove(model)
    frames, tokens = state.geometry
    masks = torch.stack([
        ra.plan(frames=frames, tokens_per_frame=tokens, text_tokens=12, text_valid=v,
                model="hunyuan", decay_factor=0.5, block_size=64).token_mask()
        for v in valid])[:, None]  # [B, 1, S, S]
    attentions = [(i, b.attn) for i, b in enumerate(list(model.transformer_blocks)
                                                    + list(model.single_transformer_blocks))]
    expected = masked_step(model, attentions, [None, masks, masks, masks], inputs, seed)
    assert_same_grads(got, expected, 1e-4)


def test_wan_compiled_training_step(seed):
    """A compiled (fullgraph) forward of the radial model, then its backward. The aot_eager
    backend traces forward and backward graphs as inductor does (the op's fakes included) but
    skips code generation, which takes minutes for a whole transformer on a small CPU;
    test_backward.py compiles a training step with inductor."""
    model = tiny_models.wan_transformer().train()
    inputs = tiny_models.wan_inputs(frames=5, height=16, width=16, seed=seed)
    radial.apply(model, dense_layers=0, dense_timesteps=0, block_size=64, decay_factor=0.5)
    radial.set_step(model, 0)
    expected = train_step(model, inputs, seed)
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    compiled.zero_grad(set_to_none=True)
    out = compiled(**inputs).sample
    target = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed))
    ((out - target) ** 2).mean().backward()
    got = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    assert_same_grads(got, expected, 1e-4)


def ulysses_worker(rank, port, results):
    """One rank of a Ulysses-parallel training step (see test_context_parallel.py)."""
    import torch.distributed as dist
    from diffusers.hooks.context_parallel import apply_context_parallel
    from diffusers.models._modeling_parallel import ContextParallelConfig, ParallelConfig
    from torch.distributed.device_mesh import init_device_mesh

    from test_context_parallel import WORLD

    dist.init_process_group("gloo", rank=rank, world_size=WORLD,
                            init_method=f"tcp://127.0.0.1:{port}")
    try:
        mesh = init_device_mesh("cpu", (1, WORLD), mesh_dim_names=("ring", "ulysses"))
        config = ParallelConfig(context_parallel_config=ContextParallelConfig(ulysses_degree=WORLD))
        config.setup(rank, WORLD, torch.device("cpu"), mesh=mesh)
        model, inputs = ulysses_model()
        model._parallel_config = config
        for module in model.modules():
            processor = getattr(module, "processor", None)
            if processor is not None and hasattr(processor, "_parallel_config"):
                processor._parallel_config = config
        apply_context_parallel(model, config.context_parallel_config, model._cp_plan)
        grads = train_step(model, inputs, 5)
        results.put((rank, {n: g.numpy() for n, g in grads.items()}))
    finally:
        dist.destroy_process_group()


def ulysses_model():
    model = tiny_models.wan_transformer(heads=2).train()
    radial.apply(model, dense_layers=1, dense_timesteps=0, block_size=64, decay_factor=0.5)
    return model, tiny_models.wan_inputs(frames=4, seed=3)


def test_ulysses_training_matches_one_process():
    """Gradients through diffusers' Ulysses all-to-alls: the radial backward_op runs on each
    rank's heads over the whole sequence. Each rank holds the gradient of its own sequence
    shard; their sum (what a data-parallel all-reduce forms) is the one-process gradient."""
    import torch.multiprocessing as mp

    from test_context_parallel import WORLD, free_port

    model, inputs = ulysses_model()
    expected = train_step(model, inputs, 5)
    context = mp.get_context("spawn")
    results = context.Queue()
    port = free_port()
    processes = [context.Process(target=ulysses_worker, args=(r, port, results))
                 for r in range(WORLD)]
    for p in processes:
        p.start()
    try:
        got = sorted((results.get(timeout=240) for _ in processes), key=lambda r: r[0])
    finally:
        for p in processes:
            p.join(timeout=60)
    total = {n: sum(torch.from_numpy(grads[n]) for _, grads in got) for n in expected}
    assert_same_grads(total, expected, 1e-4)
