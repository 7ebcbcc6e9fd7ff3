"""The tiny Wan2.2-TI2V-5B, Wan VACE, SkyReels-V2 and HunyuanVideo-I2V models, their inputs and
their generate runs, shared by test_diffusers_models.py (CPU) and gpu_checks_wan.py (CUDA)."""

import contextlib
import functools
from dataclasses import dataclass
from typing import Callable

import torch

import tiny_models

VALID = (9, 5)  # HunyuanVideo-I2V: valid text (and image) tokens of the two batch elements


def wan_attentions(model):
    from radial_attention.diffusers import _wan

    return _wan.self_attentions(model)


def hunyuan_attentions(model):
    from radial_attention.diffusers import _hunyuan

    return _hunyuan.self_attentions(model)


def wan5b_inputs(frames, height, width, seed):
    """Wan2.2-TI2V's image-to-video call: per-token timesteps, 0 on the first (image) frame."""
    inputs = tiny_models.wan_inputs(frames=frames, height=height, width=width, channels=48,
                                    seed=seed)
    per_frame = (height // 2) * (width // 2)
    t = torch.full((1, frames * per_frame), 500.0)
    t[:, :per_frame] = 0.0
    inputs["timestep"] = t
    return inputs


def vace_inputs(frames, height, width, seed):
    inputs = tiny_models.wan_inputs(frames=frames, height=height, width=width, seed=seed)
    g = torch.Generator().manual_seed(seed + 1)
    inputs["control_hidden_states"] = torch.randn(1, 6, frames, height, width, generator=g)
    inputs["control_hidden_states_scale"] = torch.tensor([1.0, 0.5])
    return inputs


def skyreels_inputs(frames, height, width, seed):
    """Diffusion forcing: one timestep per latent frame, the first frame (a prefix) clean."""
    inputs = tiny_models.wan_inputs(frames=frames, height=height, width=width, seed=seed)
    inputs["timestep"] = torch.linspace(0.0, 900.0, frames)[None]
    inputs.update(enable_diffusion_forcing=True, fps=[1])
    return inputs


def hunyuan_i2v_inputs(channels):
    def make(frames, height, width, seed):
        return tiny_models.hunyuan_inputs(frames=frames, height=height, width=width,
                                          channels=channels, valid=VALID, seed=seed)
    return make


@dataclass
class Model:
    make: Callable          # () -> transformer
    inputs: Callable        # (frames, latent height, latent width, seed) -> forward kwargs
    attentions: Callable    # transformer -> [(layer, self-attention)]
    preset: str
    rule: str               # the planner's sink rule the preset picks
    text: int = 0           # joint-attention text tokens (HunyuanVideo)


MODELS = {
    "wan2.2-ti2v-5b": Model(lambda: tiny_models.wan_transformer(in_channels=48), wan5b_inputs,
                            wan_attentions, "wan2.2-ti2v-5b", "wan"),
    "wan-vace": Model(tiny_models.wan_vace_transformer, vace_inputs, wan_attentions,
                      "wan-vace", "wan"),
    "skyreels-v2": Model(tiny_models.skyreels_transformer, skyreels_inputs, wan_attentions,
                         "skyreels-v2", "wan"),
    "hunyuan-i2v-token-replace": Model(
        lambda: tiny_models.hunyuan_transformer(image_condition_type="token_replace"),
        hunyuan_i2v_inputs(4), hunyuan_attentions, "hunyuan-i2v", "wan", text=12),
    "hunyuan-i2v-latent-concat": Model(
        lambda: tiny_models.hunyuan_transformer(in_channels=9, image_condition_type="latent_concat"),
        hunyuan_i2v_inputs(9), hunyuan_attentions, "hunyuan-i2v", "wan", text=12),
}



def write_media(folder):
    """A first-frame PNG, a control GIF and a mask GIF (white: regenerate) of random pixels."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (96, 112, 3), dtype=np.uint8)).save(folder / "image.png")
    control = [Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)) for _ in range(9)]
    control[0].save(folder / "control.gif", save_all=True, append_images=control[1:])
    mask = [Image.fromarray(np.full((64, 64, 3), 255 * (i % 2), dtype=np.uint8)) for i in range(9)]
    mask[0].save(folder / "mask.gif", save_all=True, append_images=mask[1:])
    return folder


@contextlib.contextmanager
def tiny_hunyuan_template():
    """The tiny LLaVA's prompt layout (the stock template assumes Llama's chat tokenizer)."""
    from diffusers import HunyuanVideoImageToVideoPipeline

    call = HunyuanVideoImageToVideoPipeline.__call__

    @functools.wraps(call)
    def with_template(self, *args, **kwargs):
        kwargs.update(prompt_template=tiny_models.HUNYUAN_I2V_TEMPLATE, max_sequence_length=16)
        return call(self, *args, **kwargs)

    HunyuanVideoImageToVideoPipeline.__call__ = with_template
    try:
        yield
    finally:
        HunyuanVideoImageToVideoPipeline.__call__ = call


# pipeline, flags ({media} is the media folder), what generate must print. Two steps, the
# first dense, every layer radial after it.
GENERATIONS = {
    "wan2.2-ti2v-5b-t2v": ("wan22_ti2v_5b_pipeline", "--frames 9 --height 128 --width 160",
                           ["model            WanPipeline, preset wan2.2-ti2v-5b",
                            "latent geometry  3 frames x 20 tokens/frame",
                            "attention calls  radial 4, dense 4"]),
    "wan2.2-ti2v-5b-i2v": ("wan22_ti2v_5b_pipeline",
                           "--frames 9 --height 128 --width 160 --image {media}/image.png",
                           ["model            WanImageToVideoPipeline, preset wan2.2-ti2v-5b",
                            "latent geometry  3 frames x 20 tokens/frame",
                            "attention calls  radial 4, dense 4"]),
    # 3 latent frames and the reference image's; 2 main + 2 control blocks, 2 guidance passes
    "wan-vace": ("wan_vace_pipeline",
                 "--frames 9 --height 64 --width 64 --video {media}/control.gif "
                 "--mask {media}/mask.gif --reference-image {media}/image.png "
                 "--conditioning-scale 0.8",
                 ["model            WanVACEPipeline, preset wan-vace",
                  "latent geometry  4 frames x 16 tokens/frame",
                  "attention calls  radial 8, dense 8"]),
    # 5 latent frames in chunks of 3 overlapping by 2: 3 chunks, each dense on its first step
    "skyreels-v2-df-long": ("skyreels_df_pipeline",
                            "--frames 17 --height 64 --width 64 --base-frames 9 "
                            "--overlap-history 5 --addnoise-condition 20",
                            ["model            SkyReelsV2DiffusionForcingPipeline, preset "
                             "skyreels-v2",
                             "latent geometry  3 frames x 16 tokens/frame",
                             "attention calls  radial 12, dense 12"]),
    # the image as the first latent frame's prefix; the text-to-video folder switches pipeline
    "skyreels-v2-df-i2v": ("skyreels_df_pipeline",
                           "--frames 9 --height 64 --width 64 --image {media}/image.png",
                           ["model            SkyReelsV2DiffusionForcingImageToVideoPipeline",
                            "latent geometry  3 frames x 16 tokens/frame",
                            "attention calls  radial 4, dense 4"]),
    # guidance-distilled (no second pass); 1 double- and 1 single-stream block
    "hunyuan-i2v": ("hunyuan_i2v_pipeline",
                    "--frames 9 --height 64 --width 64 --image {media}/image.png",
                    ["model            HunyuanVideoImageToVideoPipeline, preset hunyuan-i2v",
                     "latent geometry  3 frames x 16 tokens/frame",
                     "attention calls  radial 2, dense 2"]),
}
