"""``radial-train prepare``: videos with captions -> a latent cache (see cache.py).

Each clip goes to a bucket: the resolution whose aspect ratio is nearest the video's, and the
longest frame count the video holds. It is read with a real video reader, scaled and cropped
at the centre, encoded once with the pipeline's VAE and its caption once with the text
encoder(s), so that training never runs either.
"""

import math
import pathlib

import torch

from .._errors import invalid
from . import cache as _cache
from . import models, videos


def parse_resolution(text: str) -> tuple:
    try:
        h, w = (int(x) for x in str(text).lower().split("x"))
    except ValueError:
        raise invalid("resolution", "HEIGHTxWIDTH (e.g. 480x832)", repr(text)) from None
    return h, w


def pick_bucket(path, count: int, height: int, width: int, frame_counts, resolutions, stride: int):
    """(frames, height, width) for a video of `count` frames of height x width."""
    usable = [f for f in sorted(frame_counts) if (f - 1) * stride + 1 <= count]
    if not usable:
        least = min(frame_counts)
        raise invalid(str(path), f"at least {(least - 1) * stride + 1} frames (the fewest asked: "
                      f"--frames {least}" + (f" every {stride}" if stride > 1 else "") + ")",
                      f"{count} frames")
    aspect = math.log(width / height)
    h, w = min(resolutions, key=lambda r: (abs(math.log(r[1] / r[0]) - aspect), -r[0] * r[1]))
    return usable[-1], h, w


def prepare(data, model, output, frames=(81,), resolutions=((480, 832),), frame_stride=1,
            max_sequence_length=None, device=None, dtype="float32", cache_dtype="float32",
            progress=True) -> dict:
    """Writes the cache folder `output`; returns its manifest."""
    from tqdm.auto import tqdm

    family = models.family_of(model)
    tconfig = models.transformer_config(model)
    patch = models.transformer_patch(tconfig)
    clips = videos.find_clips(data)
    torch_dtype = getattr(torch, dtype)
    store_dtype = getattr(torch, cache_dtype)
    pipe = models.load_pipeline(model, dtype=torch_dtype, transformer=False)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if family == "wan" and pipe.vae.dtype != torch.float32:
        pipe.vae.to(torch.float32)  # Wan's VAE is meant to run in float32
    pipe.vae.to(device)
    for name in ("text_encoder", "text_encoder_2"):
        if getattr(pipe, name, None) is not None:
            getattr(pipe, name).to(device)
    temporal, spatial = models.scale_factors(pipe.vae)
    for f in frames:
        models.check_size(f, spatial * patch, spatial * patch, temporal, spatial, patch)
    for h, w in resolutions:
        models.check_size(1, h, w, temporal, spatial, patch)
    if frame_stride < 1:
        raise invalid("frame_stride", "an int >= 1", frame_stride)
    text_length = max_sequence_length or (512 if family == "wan" else 256)

    # Check every clip first (cheap), so a bad file fails before minutes of encoding.
    plan = []
    for clip in tqdm(clips, desc="probing videos", disable=not progress):
        count, h, w = videos.probe(clip.path)
        plan.append((clip, pick_bucket(clip.path, count, h, w, frames, resolutions, frame_stride)))

    output = pathlib.Path(output)
    (output / "samples").mkdir(parents=True, exist_ok=True)
    samples = []
    for i, (clip, (f, h, w)) in enumerate(tqdm(plan, desc="encoding", disable=not progress)):
        pixels = videos.resize_crop(videos.read_frames(clip.path, f, frame_stride), h, w)
        with torch.no_grad():
            latents = models.encode_video(family, pipe.vae, pixels)
        text = models.encode_prompt(family, pipe, clip.caption, text_length)
        tensors = {"latents": latents.to(store_dtype).cpu()}
        tensors.update({k: (v.to(store_dtype) if v.is_floating_point() else v) for k, v in text.items()})
        name = f"samples/{i:06d}.safetensors"
        _cache.atomic_save_tensors(tensors, output / name)
        samples.append({"file": name, "video": str(clip.path), "caption": clip.caption, "frames": f,
                        "height": h, "width": w, "latent_shape": list(latents.shape)})
    manifest = {"format": _cache.FORMAT, "version": _cache.VERSION, "model": str(model),
                "fingerprint": models.fingerprint(family, tconfig),
                "vae": {"class": type(pipe.vae).__name__, "temporal": temporal, "spatial": spatial},
                "text_length": text_length, "dtype": cache_dtype, "samples": samples}
    _cache.write_manifest(output, manifest)  # last: a cache without it is unfinished
    return manifest
