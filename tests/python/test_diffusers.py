"""radial_attention.diffusers on tiny random Wan and HunyuanVideo transformers (CPU).

The independent check of the radial path: the stock processor fed the plan's token mask as
its attention mask (diffusers' own SDPA path) must give what the radial processor gives.
"""

import types

import pytest
import torch

pytest.importorskip("diffusers")

import radial_attention as ra  # noqa: E402
import radial_attention.diffusers as radial  # noqa: E402
import tiny_models  # noqa: E402
from radial_attention import RadialError  # noqa: E402


class MaskedStock:
    """Test-only processor: the stock one with an explicit attention mask."""

    def __init__(self, stock, mask):
        self.stock, self.mask = stock, mask

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None,
                 rotary_emb=None, image_rotary_emb=None):
        if image_rotary_emb is not None:  # HunyuanVideo's keyword
            return self.stock(attn, hidden_states, encoder_hidden_states, self.mask, image_rotary_emb)
        return self.stock(attn, hidden_states, encoder_hidden_states, self.mask, rotary_emb)


def run_masked(model, attentions, masks, inputs):
    """Runs the stock model with masks[layer] (None: untouched) in the given self-attentions."""
    originals = [(a, a.processor) for _, a in attentions]
    try:
        for (layer, a), mask in zip(attentions, masks):
            if mask is not None:
                a.set_processor(MaskedStock(a.processor, mask))
        with torch.no_grad():
            return model(**inputs).sample
    finally:
        for a, p in originals:
            a.set_processor(p)


def rel(a, b):
    return float((a.double() - b.double()).abs().max() / b.double().abs().max())


@pytest.fixture
def wan():
    return tiny_models.wan_transformer()


@pytest.fixture
def hunyuan():
    return tiny_models.hunyuan_transformer()


def stock_output(model, inputs):
    with torch.no_grad():
        return model(**inputs).sample


def test_wan_stock_pattern_equals_stock_exactly(wan, seed):
    inputs = tiny_models.wan_inputs(seed=seed)
    expected = stock_output(wan, inputs)
    state = radial.apply(wan, pattern="stock")
    assert torch.equal(stock_output(wan, inputs), expected)
    assert state.calls == {"stock": 3}
    radial.remove(wan)
    assert torch.equal(stock_output(wan, inputs), expected)
    assert all(type(b.attn1.processor).__name__ == "WanAttnProcessor" for b in wan.blocks)


def test_wan_dense_pattern_matches_stock(wan, seed):
    inputs = tiny_models.wan_inputs(seed=seed)
    expected = stock_output(wan, inputs)
    state = radial.apply(wan, pattern="dense", dense_layers=0, dense_timesteps=0, block_size=64)
    assert rel(stock_output(wan, inputs), expected) < 1e-5
    assert state.calls == {"radial": 3}


def test_full_is_a_deprecated_name_of_dense(wan, seed):
    inputs = tiny_models.wan_inputs(seed=seed)
    radial.apply(wan, pattern="dense", dense_layers=0, dense_timesteps=0, block_size=64)
    dense = stock_output(wan, inputs)
    with pytest.warns(DeprecationWarning, match='"dense"'):
        state = radial.apply(wan, pattern="full", dense_layers=0, dense_timesteps=0,
                             block_size=64)
    assert state.settings.pattern == "dense"
    assert torch.equal(stock_output(wan, inputs), dense)
    radial.remove(wan)


@pytest.mark.parametrize("shape", [(5, 16, 16), (3, 24, 16), (7, 8, 8)])
def test_wan_radial_equals_masked_stock(wan, shape, seed):
    frames, height, width = shape
    inputs = tiny_models.wan_inputs(frames=frames, height=height, width=width, seed=seed)
    stock = stock_output(wan, inputs)
    state = radial.apply(wan, dense_layers=1, dense_timesteps=0, block_size=64, decay_factor=0.5)
    got = stock_output(wan, inputs)
    assert state.geometry == (frames, (height // 2) * (width // 2))
    assert state.calls == {"stock": 1, "radial": 2}
    radial.remove(wan)
    plan = ra.plan(frames=state.geometry[0], tokens_per_frame=state.geometry[1], model="wan",
                   decay_factor=0.5, block_size=64)
    assert plan.density < 1.0  # the mask really masks something
    mask = plan.token_mask()
    expected = run_masked(wan, [(i, b.attn1) for i, b in enumerate(wan.blocks)],
                          [None, mask, mask], inputs)
    assert rel(got, expected) < 1e-5
    assert rel(got, stock) > 1e-3


def test_hunyuan_stock_pattern_equals_stock_exactly(hunyuan, seed):
    inputs = tiny_models.hunyuan_inputs(seed=seed)
    expected = stock_output(hunyuan, inputs)
    state = radial.apply(hunyuan, pattern="stock")
    assert torch.equal(stock_output(hunyuan, inputs), expected)
    assert state.calls == {"stock": 4}
    radial.remove(hunyuan)
    assert torch.equal(stock_output(hunyuan, inputs), expected)


@pytest.mark.parametrize("valid", [(9, 5), (12, 12)], ids=["padded-unequal", "all-valid"])
def test_hunyuan_dense_pattern_matches_stock(hunyuan, valid, seed):
    inputs = tiny_models.hunyuan_inputs(valid=valid, seed=seed)
    expected = stock_output(hunyuan, inputs)
    state = radial.apply(hunyuan, pattern="dense", dense_layers=0, dense_timesteps=0, block_size=64)
    assert rel(stock_output(hunyuan, inputs), expected) < 1e-5
    assert state.text_valid == list(valid)
    assert state.calls == {"radial": 4}


def test_hunyuan_radial_equals_masked_stock(hunyuan, seed):
    valid = (9, 5)
    inputs = tiny_models.hunyuan_inputs(frames=6, height=16, width=16, valid=valid, seed=seed)
    state = radial.apply(hunyuan, dense_layers=1, dense_timesteps=0, block_size=64,
                         decay_factor=0.5)
    got = stock_output(hunyuan, inputs)
    assert state.calls == {"stock": 1, "radial": 3}
    radial.remove(hunyuan)
    frames, tokens = state.geometry
    masks = torch.stack([
        ra.plan(frames=frames, tokens_per_frame=tokens, text_tokens=12, text_valid=v,
                model="hunyuan", decay_factor=0.5, block_size=64).token_mask()
        for v in valid])[:, None]  # [B, 1, S, S]
    assert not masks[:, :, : frames * tokens, : frames * tokens].all()
    attentions = [(i, b.attn) for i, b in enumerate(list(hunyuan.transformer_blocks)
                                                    + list(hunyuan.single_transformer_blocks))]
    expected = run_masked(hunyuan, attentions, [None, masks, masks, masks], inputs)
    assert rel(got, expected) < 1e-5


def test_steps_are_counted_from_timesteps(wan, seed):
    state = radial.apply(wan, dense_layers=0, dense_timesteps=2, block_size=64)
    inputs = tiny_models.wan_inputs(seed=seed)
    seen = []
    # Two calls per step (classifier-free guidance), then a new generation.
    for t in (900, 900, 800, 800, 700, 700, 950):
        inputs["timestep"] = torch.tensor([float(t)])
        before = dict(state.calls)
        stock_output(wan, inputs)
        radial_calls = state.calls["radial"] - before.get("radial", 0)
        seen.append((state.step, radial_calls))
    assert seen == [(0, 0), (0, 0), (1, 0), (1, 0), (2, 3), (2, 3), (0, 0)]
    radial.set_step(wan, 5)
    assert state.step == 5 and not state.warmup


def test_pipeline_steps_are_counted_at_the_scheduler(seed):
    from diffusers import FlowMatchEulerDiscreteScheduler

    model = tiny_models.wan_transformer()
    pipe = types.SimpleNamespace(transformer=model, scheduler=FlowMatchEulerDiscreteScheduler())
    state = radial.apply(pipe, dense_layers=0, dense_timesteps=1, block_size=64)
    assert state.counting == "scheduler"
    inputs = tiny_models.wan_inputs(seed=seed)
    pipe.scheduler.set_timesteps(3)
    latents = torch.randn(1, 4, 5, 16, 16)
    for i, t in enumerate(pipe.scheduler.timesteps):
        inputs["timestep"] = t.expand(1)
        stock_output(model, inputs)
        assert state.calls["radial"] == (0 if i == 0 else 3 * i)
        latents = pipe.scheduler.step(torch.randn_like(latents), t, latents).prev_sample
    pipe.scheduler.set_timesteps(3)  # a new generation starts dense again
    assert state.step == 0 and state.warmup
    radial.remove(pipe)
    assert "step" not in vars(pipe.scheduler) and "set_timesteps" not in vars(pipe.scheduler)


def test_pipeline_generation_writes_a_video(tmp_path, capsys):
    from radial_attention import generate

    folder = tmp_path / "tiny-wan"
    tiny_models.wan_pipeline().save_pretrained(str(folder))
    out = tmp_path / "video.mp4"
    generate.main(["--model", str(folder), "--frames", "9", "--height", "128", "--width", "128",
                   "--steps", "3", "--dense-steps", "1", "--dense-layers", "0",
                   "--block-size", "64", "--device", "cpu", "--dtype", "fp32",
                   "--output", str(out)])
    printed = capsys.readouterr().out
    # 3 steps x 2 layers x 2 guidance passes: the first step dense, the rest radial.
    assert "attention calls  radial 8, dense 4" in printed
    assert "attention time" in printed and "total time" in printed
    written = out if out.exists() else tmp_path / "video_frames"
    assert written.exists() and (written.stat().st_size > 0 or any(written.iterdir()))


def test_compiled_fullgraph_matches_eager(wan, seed):
    inputs = tiny_models.wan_inputs(seed=seed)
    stock = stock_output(wan, inputs)
    state = radial.apply(wan, dense_layers=1, dense_timesteps=0, block_size=64, decay_factor=0.5)
    torch._dynamo.reset()
    compiled = torch.compile(wan, fullgraph=True)
    with torch.no_grad():  # compiled first: the geometry must come from the traced hook
        got = compiled(**inputs).sample
    assert state.geometry == (5, 64)
    eager = stock_output(wan, inputs)
    assert state.calls == {"stock": 1, "radial": 2}  # counted in the eager run only
    assert rel(got, eager) < 1e-5
    assert rel(got, stock) > 1e-3


def test_apply_arguments_are_checked(wan):
    with pytest.raises(RadialError, match="model_or_pipeline") as info:
        radial.apply(torch.nn.Linear(2, 2))
    assert info.value.argument == "model_or_pipeline"
    for kwargs, argument in [(dict(pattern="sparse"), "pattern"),
                             (dict(dense_layers=-1), "dense_layers"),
                             (dict(dense_timesteps=1.5), "dense_timesteps"),
                             (dict(block_size=96), "block_size"),
                             (dict(decay_factor=0.0), "decay_factor"),
                             (dict(precision="int8"), "precision")]:
        with pytest.raises(RadialError) as info:
            radial.apply(wan, **kwargs)
        assert info.value.argument == argument
    assert not hasattr(wan, "_radial_attention")  # a refused apply leaves the model stock
    with pytest.raises(RadialError, match="a model or pipeline that apply"):
        radial.state(wan)


def test_ring_attention_is_refused_clearly():
    from radial_attention.diffusers._processor import _ulysses

    config = types.SimpleNamespace(context_parallel_config=types.SimpleNamespace(
        ring_degree=2, ulysses_degree=1))
    with pytest.raises(RadialError) as info:
        _ulysses(None, None, None, config, None, None)
    assert info.value.argument == "context_parallel_config.ring_degree"


def test_processor_forwards_backend_settings(wan):
    radial.apply(wan)
    processor = wan.blocks[0].attn1.processor
    processor._parallel_config = "config"
    assert processor.stock._parallel_config == "config"
    processor._attention_backend = "native"
    assert processor.stock._attention_backend == "native"


def test_both_wan22_experts_share_one_schedule(seed):
    high, low = tiny_models.wan_transformer(seed=1), tiny_models.wan_transformer(seed=2)
    pipe = types.SimpleNamespace(transformer=high, transformer_2=low)
    state = radial.apply(pipe, dense_layers=0, dense_timesteps=1, block_size=64)
    assert radial.state(high) is state and radial.state(low) is state
    inputs = tiny_models.wan_inputs(seed=seed)
    for model, t in ((high, 900), (high, 800), (low, 700), (low, 600)):  # experts hand over
        inputs["timestep"] = torch.tensor([float(t)])
        stock_output(model, inputs)
    assert state.step == 3 and state.calls == {"stock": 3, "radial": 9}
    radial.remove(pipe)
    assert not hasattr(high, "_radial_attention") and not hasattr(low, "_radial_attention")


def test_generation_with_lora(tmp_path, capsys):
    pytest.importorskip("peft")
    from diffusers import WanPipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    from radial_attention import generate

    pipe = tiny_models.wan_pipeline()
    pipe.save_pretrained(str(tmp_path / "tiny-wan"))
    pipe.transformer.add_adapter(LoraConfig(r=2, lora_alpha=2, target_modules=["to_q", "to_v"],
                                            init_lora_weights=False))
    WanPipeline.save_lora_weights(str(tmp_path / "lora"),
                                  transformer_lora_layers=get_peft_model_state_dict(pipe.transformer))
    out = tmp_path / "video.mp4"
    generate.main(["--model", str(tmp_path / "tiny-wan"), "--lora", str(tmp_path / "lora"),
                   "--lora-scale", "0.5", "--frames", "9", "--height", "128", "--width", "128",
                   "--steps", "2", "--dense-steps", "1", "--dense-layers", "0", "--block-size", "64",
                   "--device", "cpu", "--dtype", "fp32", "--output", str(out)])
    printed = capsys.readouterr().out
    assert f"lora             {tmp_path / 'lora'} (scale 0.5)" in printed
    assert "attention calls  radial 4, dense 4" in printed


def test_fp8_precision_reaches_the_library(wan):
    """apply(precision="fp8") runs the radial layers through the FP8 forward: on the CPU the
    library refuses it by name (it runs on compute capability 9.0 only)."""
    radial.apply(wan, dense_layers=0, dense_timesteps=0, precision="fp8")
    assert radial.state(wan).settings.precision == "fp8"
    with pytest.raises(RadialError) as info, torch.no_grad():
        wan(**tiny_models.wan_inputs(seed=0))
    assert info.value.argument == "options.precision"
