"""What training needs to know about each model family (Wan2.1/2.2, HunyuanVideo): how to
load the parts of a diffusers pipeline folder, what frame counts and sizes the model takes,
how the pipeline normalises latents and encodes prompts, and how the transformer is called.
"""

import json
import pathlib

import torch

from .._errors import invalid

# model_index.json "_class_name" -> family
PIPELINES = {"WanPipeline": "wan", "HunyuanVideoPipeline": "hunyuan"}
TRANSFORMERS = {"wan": "WanTransformer3DModel", "hunyuan": "HunyuanVideoTransformer3DModel"}
DEFAULT_SHIFT = {"wan": 3.0, "hunyuan": 7.0}


def model_index(model) -> dict:
    """The pipeline's model_index.json (a local folder or a hub id in the local cache)."""
    path = pathlib.Path(model)
    if path.is_dir():
        index = path / "model_index.json"
        if not index.is_file():
            raise invalid("model", "a diffusers pipeline folder (with model_index.json)",
                          f"{path} without one")
        return json.loads(index.read_text())
    from diffusers import DiffusionPipeline

    return DiffusionPipeline.load_config(str(model))


def family_of(model) -> str:
    name = model_index(model).get("_class_name")
    if name not in PIPELINES:
        raise invalid("model", f"a pipeline of {', '.join(sorted(PIPELINES))}", f"{model} ({name})")
    return PIPELINES[name]


def load_pipeline(model, dtype=torch.float32, transformer=True):
    """The pipeline (the transformer left out with transformer=False, for prepare)."""
    from diffusers import DiffusionPipeline

    kwargs = {}
    if not transformer:
        kwargs = {k: None for k in ("transformer", "transformer_2") if k in model_index(model)}
    pipe = DiffusionPipeline.from_pretrained(str(model), torch_dtype=dtype, **kwargs)
    return pipe


def load_transformer(model, subfolder="transformer", dtype=torch.float32):
    family = family_of(model)
    import diffusers

    cls = getattr(diffusers, TRANSFORMERS[family])
    return cls.from_pretrained(str(model), subfolder=subfolder, torch_dtype=dtype)


def default_shift(model) -> float:
    """The flow-matching shift of the pipeline's scheduler (Wan's UniPC keeps it as
    flow_shift, FlowMatchEuler as shift)."""
    path = pathlib.Path(model)
    try:
        if path.is_dir():
            config = json.loads((path / "scheduler" / "scheduler_config.json").read_text())
        else:
            from diffusers import SchedulerMixin

            config = SchedulerMixin.load_config(str(model), subfolder="scheduler")
    except (OSError, ValueError):
        return DEFAULT_SHIFT[family_of(model)]
    for key in ("flow_shift", "shift"):
        if config.get(key) is not None:
            return float(config[key])
    return DEFAULT_SHIFT[family_of(model)]


def scale_factors(vae) -> tuple:
    """(temporal, spatial) compression of the VAE."""
    config = vae.config
    if hasattr(config, "scale_factor_temporal"):  # Wan
        return int(config.scale_factor_temporal), int(config.scale_factor_spatial)
    return int(config.temporal_compression_ratio), int(config.spatial_compression_ratio)


def check_size(frames: int, height: int, width: int, temporal: int, spatial: int, patch: int,
               where: str = "") -> None:
    """The model takes temporal*k+1 frames and sizes that are multiples of spatial*patch."""
    prefix = f"{where}: " if where else ""
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1 or (frames - 1) % temporal:
        raise invalid(f"{prefix}frames", f"{temporal}k+1 (1, {temporal + 1}, {2 * temporal + 1}, ...; "
                      f"the VAE compresses time {temporal}x)", frames)
    multiple = spatial * patch
    for name, value in (("height", height), ("width", width)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0 or value % multiple:
            raise invalid(f"{prefix}{name}", f"a positive multiple of {multiple} (the VAE's "
                          f"{spatial} x the transformer's patch {patch})", value)


def transformer_patch(config) -> int:
    patch = config["patch_size"]
    return int(patch[1] if isinstance(patch, (list, tuple)) else patch)


def transformer_config(model, subfolder="transformer") -> dict:
    path = pathlib.Path(model)
    if path.is_dir():
        file = path / subfolder / "config.json"
        if not file.is_file():
            raise invalid("model", f"a pipeline folder with {subfolder}/config.json", str(path))
        return json.loads(file.read_text())
    from diffusers import ModelMixin

    return ModelMixin.load_config(str(model), subfolder=subfolder)


def fingerprint(family: str, config: dict) -> dict:
    """What a cache must agree on with the transformer that trains on it."""
    if family == "wan":
        keys = ("in_channels", "text_dim", "patch_size")
    else:
        keys = ("in_channels", "text_embed_dim", "pooled_projection_dim", "patch_size", "patch_size_t")
    out = {"family": family}
    out.update({k: config.get(k) for k in keys})
    if isinstance(out.get("patch_size"), tuple):
        out["patch_size"] = list(out["patch_size"])
    return out


# --- latents ---------------------------------------------------------------------------------

def normalise_latents(family: str, vae, latents: torch.Tensor) -> torch.Tensor:
    """The VAE's raw latents [B, C, F, H, W] in the space the transformer denoises (what
    the pipeline un-does before decoding)."""
    if family == "wan":
        c = vae.config.z_dim
        mean = torch.tensor(vae.config.latents_mean, dtype=latents.dtype).view(1, c, 1, 1, 1)
        std = torch.tensor(vae.config.latents_std, dtype=latents.dtype).view(1, c, 1, 1, 1)
        return (latents - mean.to(latents.device)) / std.to(latents.device)
    return latents * vae.config.scaling_factor


def encode_video(family: str, vae, video: torch.Tensor) -> torch.Tensor:
    """float [3, F, H, W] in [-1, 1] -> normalised latents [C, f, h, w] (the posterior mean)."""
    x = video.unsqueeze(0).to(vae.device, vae.dtype)
    latents = vae.encode(x).latent_dist.mean
    return normalise_latents(family, vae, latents.float())[0]


def encode_prompt(family: str, pipe, caption: str, max_sequence_length: int) -> dict:
    """The text conditioning of one caption, as tensors to cache (batch dim removed)."""
    device = pipe.text_encoder.device
    with torch.no_grad():
        if family == "wan":
            embeds, _ = pipe.encode_prompt(caption, do_classifier_free_guidance=False,
                                           max_sequence_length=max_sequence_length, device=device)
            # The pipeline zeroes the rows past the caption's tokens: keep only the caption's
            # (training pads them back with zeros to max_sequence_length).
            used = (embeds[0] != 0).any(dim=-1).nonzero()
            length = int(used.max()) + 1 if used.numel() else 0
            return {"prompt_embeds": embeds[0, :length].float().cpu()}
        embeds, pooled, mask = pipe.encode_prompt(caption, device=device,
                                                  max_sequence_length=max_sequence_length)
        return {"prompt_embeds": embeds[0].float().cpu(), "pooled_prompt_embeds": pooled[0].float().cpu(),
                "prompt_attention_mask": mask[0].to(torch.int32).cpu()}


def transformer_inputs(family: str, batch: dict, noisy: torch.Tensor, timesteps: torch.Tensor,
                       dtype, text_length: int, guidance: float) -> dict:
    """The transformer's keyword arguments for a batch from the cache."""
    embeds = batch["prompt_embeds"]
    if family == "wan":
        # As the pipeline does: the caption's tokens, zeros up to max_sequence_length.
        padded = embeds.new_zeros(embeds.shape[0], text_length, embeds.shape[-1])
        padded[:, : embeds.shape[1]] = embeds
        return dict(hidden_states=noisy.to(dtype), timestep=timesteps,
                    encoder_hidden_states=padded.to(dtype), return_dict=False)
    b = noisy.shape[0]
    return dict(hidden_states=noisy.to(dtype), timestep=timesteps,
                encoder_hidden_states=embeds.to(dtype),
                encoder_attention_mask=batch["prompt_attention_mask"],
                pooled_projections=batch["pooled_prompt_embeds"].to(dtype),
                guidance=torch.full((b,), guidance * 1000.0, device=noisy.device, dtype=dtype),
                return_dict=False)
