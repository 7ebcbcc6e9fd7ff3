"""The model presets from Python: each preset's pixel -> latent numbers against the diffusers
pipeline's own arithmetic (its prepare_latents and the transformer's patch), bad sizes refused
by name, and the C ABI's preset entry point."""

import ctypes

import pytest
import torch

import radial_attention as ra
from radial_attention import RadialError, _lib


def test_every_preset_is_known_to_the_library():
    for name, code in _lib.MODELS.items():
        preset = ra.model_preset(name)
        assert preset.name == name
        assert preset.temporal_compression in (4, 6, 8) and preset.patch_size in (1, 2)
        assert preset.decay_factor > 0 and preset.dense_layers >= 0
    out = _lib.ModelPreset()
    lib = _lib.lib()
    assert lib.radial_model_preset_get(len(_lib.MODELS), ctypes.byref(out)) == _lib.INVALID_ARGUMENT
    assert lib.radial_last_error_argument() == b"model"
    assert lib.radial_model_preset_get(0, None) == _lib.INVALID_ARGUMENT
    assert lib.radial_last_error_argument() == b"out"
    with pytest.raises(RadialError) as info:
        ra.model_preset("sora")
    assert info.value.argument == "model" and "ltx-video" in str(info.value)


def _pipeline_geometry(pipe, frames, height, width):
    """(latent frames, tokens per frame) as the pipeline and its transformer make them."""
    latents = pipe.prepare_latents(
        batch_size=1, num_channels_latents=pipe.transformer.config.in_channels, height=height,
        width=width, num_frames=frames, dtype=torch.float32, device=torch.device("cpu"),
        generator=torch.Generator().manual_seed(0))
    if latents.ndim == 3:  # LTX packs [B, tokens, C]; its frames are (frames - 1) // t + 1
        latent_frames = (frames - 1) // pipe.vae_temporal_compression_ratio + 1
        return latent_frames, latents.shape[1] // latent_frames
    _, _, latent_frames, h, w = latents.shape
    patch = pipe.transformer.config.patch_size
    p = patch[1] if isinstance(patch, (tuple, list)) else patch
    return latent_frames, (h // p) * (w // p)


PIPELINES = [  # preset, tiny pipeline, sizes (video frames, height, width) it takes
    ("wan", "wan_pipeline", [(81, 480, 832), (9, 128, 96)]),
    ("hunyuan", "hunyuan_pipeline", [(129, 720, 1280), (5, 64, 48)]),
    ("mochi", "mochi_pipeline", [(163, 480, 848), (7, 64, 96)]),
    ("ltx-video", "ltx_pipeline", [(161, 512, 704), (9, 96, 64)]),
    ("wan2.2-ti2v-5b", "wan22_ti2v_5b_pipeline", [(121, 704, 1280), (5, 64, 96)]),
]


@pytest.mark.parametrize("preset,factory,sizes", PIPELINES, ids=[p[0] for p in PIPELINES])
def test_presets_match_the_pipelines_arithmetic(preset, factory, sizes):
    pytest.importorskip("diffusers")
    import tiny_models

    pipe = getattr(tiny_models, factory)()
    for frames, height, width in sizes:
        assert ra.geometry_from_video(preset, frames, height, width) == \
            _pipeline_geometry(pipe, frames, height, width), (frames, height, width)


def test_variants_share_their_base_models_vae():
    """WanVACE and SkyReels-V2 run Wan2.1's VAE and patch, HunyuanVideo-I2V HunyuanVideo's."""
    for variant, base in (("wan-vace", "wan"), ("skyreels-v2", "wan"), ("hunyuan-i2v", "hunyuan")):
        for size in ((81, 480, 832), (97, 544, 960), (9, 64, 48)):
            assert ra.geometry_from_video(variant, *size) == ra.geometry_from_video(base, *size)


@pytest.mark.parametrize("preset,args,parts", [
    ("mochi", (20, 480, 848), ["video_frames", "6k + 1", "19", "25", "got 20"]),
    ("ltx-video", (161, 500, 704), ["height", "multiple of 32", "480", "512", "got 500"]),
    ("wan2.2-ti2v-5b", (121, 720, 1280), ["height", "multiple of 32", "704", "736", "got 720"]),
])
def test_sizes_a_model_cannot_take_are_named(preset, args, parts):
    with pytest.raises(RadialError) as info:
        ra.geometry_from_video(preset, *args)
    assert info.value.argument == parts[0]
    for part in parts:
        assert part in str(info.value)


def test_plan_for_video_takes_the_presets_decay():
    plan = ra.plan_for_video("mochi", 163, 480, 848, text_tokens=256, text_valid=100)
    assert plan.key.decay_factor == ra.model_preset("mochi").decay_factor
    assert (plan.key.frames, plan.key.tokens_per_frame, plan.seq_len) == (28, 1590, 28 * 1590 + 256)
    assert plan.key_limit == 28 * 1590 + 100
    other = ra.plan_for_video("mochi", 163, 480, 848, text_tokens=256, decay_factor=0.5)
    assert other.key.decay_factor == 0.5 and other.kept_blocks < plan.kept_blocks
