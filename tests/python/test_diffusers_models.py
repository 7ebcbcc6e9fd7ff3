"""radial_attention.diffusers on tiny random Wan2.2-TI2V-5B, Wan VACE, SkyReels-V2 and
HunyuanVideo-I2V transformers (CPU), each saved and reloaded as diffusers does, and their
pipelines through python -m radial_attention.generate.

As in test_diffusers.py, the independent check of the radial path is the stock processor fed
the plan's token mask (diffusers' own SDPA) in the layers that run radial.
"""

import pytest
import torch

pytest.importorskip("diffusers")

import radial_attention as ra  # noqa: E402
import radial_attention.diffusers as radial  # noqa: E402
import tiny_models  # noqa: E402
import wan_family_models  # noqa: E402
from test_diffusers import rel, run_masked, stock_output  # noqa: E402
from wan_family_models import (GENERATIONS, MODELS, VALID, skyreels_inputs,  # noqa: E402
                               wan5b_inputs, wan_attentions, write_media)


@pytest.fixture(scope="module", params=list(MODELS))
def model(request, tmp_path_factory):
    """(spec, transformer) with the transformer saved and reloaded through diffusers."""
    spec = MODELS[request.param]
    original = spec.make()
    folder = tmp_path_factory.mktemp(request.param)
    original.save_pretrained(str(folder))
    reloaded = type(original).from_pretrained(str(folder)).eval()
    yield spec, reloaded
    radial.remove(reloaded)


def test_preset_and_stock_pattern_equals_stock_exactly(model, seed):
    spec, transformer = model
    inputs = spec.inputs(5, 16, 16, seed)
    expected = stock_output(transformer, inputs)
    state = radial.apply(transformer, pattern="stock")
    assert radial.preset_of(transformer) == spec.preset
    assert state.settings.model == spec.preset
    assert torch.equal(stock_output(transformer, inputs), expected)
    assert state.calls == {"stock": len(spec.attentions(transformer))}
    radial.remove(transformer)
    assert torch.equal(stock_output(transformer, inputs), expected)


def test_dense_pattern_matches_stock(model, seed):
    spec, transformer = model
    inputs = spec.inputs(5, 16, 16, seed)
    expected = stock_output(transformer, inputs)
    state = radial.apply(transformer, pattern="dense", dense_layers=0, dense_timesteps=0,
                         block_size=64)
    got = stock_output(transformer, inputs)
    radial.remove(transformer)
    assert rel(got, expected) < 1e-5
    assert state.calls == {"radial": len(spec.attentions(transformer))}


# Latent (frames, height, width): 30 and 99 tokens per frame, 270 and 495 video tokens, none a
# multiple of the 64-token block.
@pytest.mark.parametrize("shape", [(9, 10, 12), (5, 18, 22)])
def test_radial_equals_masked_stock(model, shape, seed):
    spec, transformer = model
    frames, height, width = shape
    inputs = spec.inputs(frames, height, width, seed)
    stock = stock_output(transformer, inputs)
    state = radial.apply(transformer, dense_layers=1, dense_timesteps=0, block_size=64,
                         decay_factor=0.5)
    got = stock_output(transformer, inputs)
    radial.remove(transformer)
    attentions = spec.attentions(transformer)
    tokens = (height // 2) * (width // 2)
    assert state.geometry == (frames, tokens)
    assert (frames * tokens) % 64 != 0
    radial_layers = sum(layer >= 1 for layer, _ in attentions)
    assert state.calls == {"stock": len(attentions) - radial_layers, "radial": radial_layers}
    if spec.text:
        mask = torch.stack([ra.plan(frames=frames, tokens_per_frame=tokens, text_tokens=spec.text,
                                    text_valid=v, model=spec.rule, decay_factor=0.5,
                                    block_size=64).token_mask() for v in VALID])[:, None]
    else:
        mask = ra.plan(frames=frames, tokens_per_frame=tokens, model=spec.rule, decay_factor=0.5,
                       block_size=64).token_mask()
    video = frames * tokens
    assert not mask[..., :video, :video].all()  # the mask really masks something
    expected = run_masked(transformer, attentions,
                          [mask if layer >= 1 else None for layer, _ in attentions], inputs)
    assert rel(got, expected) < 1e-5
    assert rel(got, stock) > 1e-3


@pytest.mark.parametrize("make, preset, rule, decay", [
    (tiny_models.wan_transformer, "wan", "wan", 0.2),
    (lambda: tiny_models.wan_transformer(in_channels=48), "wan2.2-ti2v-5b", "wan", 0.8),
    (tiny_models.wan_vace_transformer, "wan-vace", "wan", 0.2),
    (tiny_models.skyreels_transformer, "skyreels-v2", "wan", 0.2),
    (tiny_models.hunyuan_transformer, "hunyuan", "hunyuan", 0.95),
    (lambda: tiny_models.hunyuan_transformer(image_condition_type="token_replace"),
     "hunyuan-i2v", "wan", 0.95),
], ids=["wan", "wan2.2-ti2v-5b", "wan-vace", "skyreels-v2", "hunyuan", "hunyuan-i2v"])
def test_each_model_gets_its_presets_defaults(make, preset, rule, decay):
    transformer = make()
    state = radial.apply(transformer)
    assert (state.settings.model, state.settings.decay_factor) == (preset, decay)
    assert radial.apply(transformer, decay_factor=0.5).settings.decay_factor == 0.5
    radial.remove(transformer)
    # the preset's attention sink: its plan is the one of the sink rule it names
    plans = [ra.plan(frames=6, tokens_per_frame=100, text_tokens=12, text_valid=9, model=m,
                     decay_factor=0.5, block_size=64).token_mask() for m in (preset, rule)]
    assert torch.equal(*plans)


def test_vace_control_blocks_count_as_the_layer_they_feed():
    transformer = tiny_models.wan_vace_transformer(layers=3, vace_layers=(0, 2))
    layers = [layer for layer, _ in wan_attentions(transformer)]
    assert layers == [0, 2, 0, 1, 2]  # control blocks run first


def test_skyreels_block_causal_attention_runs_stock(seed):
    """Diffusion forcing with causal blocks hands attn1 a block-causal mask: the radial layout
    has no causal form, so those calls stay stock (and equal stock exactly)."""
    transformer = tiny_models.skyreels_transformer(num_frame_per_block=2)
    inputs = skyreels_inputs(6, 16, 16, seed)
    expected = stock_output(transformer, inputs)
    state = radial.apply(transformer, dense_layers=0, dense_timesteps=0, block_size=64)
    assert torch.equal(stock_output(transformer, inputs), expected)
    assert state.calls == {"stock": 3}
    radial.remove(transformer)


def test_per_token_timesteps_are_counted_from_the_noisiest_token(seed):
    """Wan2.2-TI2V's image-to-video timesteps are 0 on the image frame and t elsewhere."""
    transformer = tiny_models.wan_transformer(in_channels=48)
    state = radial.apply(transformer, dense_layers=0, dense_timesteps=1, block_size=64)
    seen = []
    for t in (900, 800, 700):
        inputs = wan5b_inputs(5, 16, 16, seed)
        inputs["timestep"] = (inputs["timestep"] > 0).float() * t
        before = state.calls["radial"]
        stock_output(transformer, inputs)
        seen.append((state.step, state.calls["radial"] - before))
    assert seen == [(0, 0), (1, 3), (2, 3)]


def test_diffusion_forcing_steps_follow_the_noisiest_frame(seed):
    """A step is the noisiest frame's place in the pipeline's schedule: the scheduler is not
    wrapped (the pipeline deep-copies it per frame), clean prefix frames do not count."""
    from diffusers import UniPCMultistepScheduler

    class FakeDiffusionForcingPipeline:
        def __init__(self, transformer):
            self.transformer = transformer
            self.scheduler = UniPCMultistepScheduler(flow_shift=8.0, use_flow_sigmas=True,
                                                     prediction_type="flow_prediction")

    transformer = tiny_models.skyreels_transformer()
    pipe = FakeDiffusionForcingPipeline(transformer)
    state = radial.apply(pipe, dense_layers=0, dense_timesteps=2, block_size=64)
    assert state.counting == "noise" and "step" not in vars(pipe.scheduler)
    pipe.scheduler.set_timesteps(5)
    schedule = pipe.scheduler.timesteps.float()
    inputs = skyreels_inputs(4, 16, 16, seed)
    seen = []
    # rows of a step matrix: frame 0 a clean prefix, the later frames lagging (asynchronous)
    for row in ([0, 0, 0, 0], [0, 1, 0, 0], [0, 2, 1, 0], [0, 3, 2, 1], [0, 4, 3, 2],
                [0, 5, 4, 3], [0, 0, 0, 0]):
        inputs["timestep"] = torch.stack([schedule[i] if i < 5 else torch.tensor(0.0)
                                          for i in row])[None]
        inputs["timestep"][0, 0] = 0.0
        before = state.calls["radial"]
        stock_output(transformer, inputs)
        seen.append((state.step, state.calls["radial"] - before))
    assert seen == [(0, 0), (0, 0), (0, 0), (1, 0), (2, 3), (3, 3), (0, 0)]
    radial.remove(pipe)


# --- python -m radial_attention.generate on each tiny pipeline -------------------------------

@pytest.fixture(scope="module")
def media(tmp_path_factory):
    return write_media(tmp_path_factory.mktemp("media"))


@pytest.fixture(scope="module")
def pipelines(tmp_path_factory):
    """Folders of the tiny pipelines, saved on first use."""
    root = tmp_path_factory.mktemp("pipelines")
    saved = {}

    def folder(name):
        if name not in saved:
            getattr(tiny_models, name)().save_pretrained(str(root / name))
            saved[name] = str(root / name)
        return saved[name]

    return folder


@pytest.fixture
def tiny_hunyuan_template():
    with wan_family_models.tiny_hunyuan_template():
        yield


@pytest.mark.parametrize("name", list(GENERATIONS))
def test_generate_writes_a_video(name, pipelines, media, tmp_path, capsys, tiny_hunyuan_template):
    from radial_attention import generate

    pipeline, flags, expected = GENERATIONS[name]
    out = tmp_path / "video.mp4"
    generate.main(["--model", pipelines(pipeline), *flags.format(media=media).split(),
                   "--steps", "2", "--dense-steps", "1", "--dense-layers", "0",
                   "--block-size", "64", "--device", "cpu", "--dtype", "fp32",
                   "--output", str(out)])
    printed = capsys.readouterr().out
    for line in expected:
        assert line in printed
    written = out if out.exists() else tmp_path / "video_frames"
    assert written.exists() and (written.stat().st_size > 0 or any(written.iterdir()))


def test_generate_refuses_conditioning_a_pipeline_does_not_take(pipelines, media):
    from radial_attention import generate

    common = ["--frames", "9", "--height", "64", "--width", "64", "--steps", "1",
              "--device", "cpu", "--dtype", "fp32"]
    with pytest.raises(SystemExit, match="--video: WanPipeline takes no 'video'"):
        generate.main(["--model", pipelines("wan22_ti2v_5b_pipeline"), "--video",
                       str(media / "control.gif"), *common])
    with pytest.raises(SystemExit, match="--image: HunyuanVideoImageToVideoPipeline needs"):
        generate.main(["--model", pipelines("hunyuan_i2v_pipeline"), *common])
    with pytest.raises(SystemExit, match="--image: WanPipeline takes no 'image'"):
        generate.main(["--model", pipelines("wan_pipeline"), "--image",
                       str(media / "image.png"), *common])


def test_diffusion_forcing_pipeline_is_untouched_by_apply(seed):
    """The long-video pipeline deep-copies its scheduler per frame (wrapping the scheduler's
    methods, as other pipelines get, makes the copies step the original and UniPC fails):
    with pattern="stock" the video equals the unpatched pipeline's bit for bit."""
    pipe = tiny_models.skyreels_df_pipeline()

    def run():
        return pipe("a cat walks", num_frames=17, base_num_frames=9, overlap_history=5,
                    height=64, width=64, num_inference_steps=2, output_type="np",
                    generator=torch.Generator().manual_seed(seed)).frames[0]

    expected = run()
    state = radial.apply(pipe, pattern="stock")
    got = run()
    radial.remove(pipe)
    assert state.counting == "noise" and state.calls == {"stock": 3 * 2 * 2 * 2}
    assert (got == expected).all()


def unwired_ulysses_worker(rank, world):
    from radial_attention import RadialError
    from radial_attention.parallel import enable_ulysses

    found = []
    for transformer in (tiny_models.wan_vace_transformer(), tiny_models.skyreels_transformer()):
        try:
            enable_ulysses(transformer)
            found.append(None)
        except RadialError as error:
            found.append((error.argument, str(error)))
    return found


def test_ulysses_is_refused_clearly_where_not_wired():
    """diffusers has no context-parallel plan for VACE's control stream or SkyReels-V2's
    per-frame modulation; enable_ulysses names the model instead of splitting wrongly."""
    import distributed

    [found] = distributed.run(1, unwired_ulysses_worker)
    for error, name in zip(found, ("WanVACETransformer3DModel", "SkyReelsV2Transformer3DModel")):
        assert error is not None
        argument, message = error
        assert argument == "model_or_pipeline" and "not wired" in message and name in message


def test_the_image_to_video_switch_keeps_the_dtype(pipelines):
    """diffusers' from_pipe casts to float32 unless told: the CUDA kernels then refuse it."""
    from diffusers import DiffusionPipeline

    from radial_attention import generate

    for name, expected in (("wan22_ti2v_5b_pipeline", "WanImageToVideoPipeline"),
                           ("skyreels_df_pipeline", "SkyReelsV2DiffusionForcingImageToVideoPipeline")):
        pipe = DiffusionPipeline.from_pretrained(pipelines(name), torch_dtype=torch.bfloat16)
        switched = generate._for_image(pipe, torch.bfloat16)
        assert type(switched).__name__ == expected
        assert switched.transformer.dtype == torch.bfloat16
