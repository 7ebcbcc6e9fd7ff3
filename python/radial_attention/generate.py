"""Text-to-video with Radial Attention: python -m radial_attention.generate --model ID_OR_DIR ...

Loads a diffusers Wan2.1 / Wan2.2 (TI2V-5B too) / Wan VACE / SkyReels-V2 / HunyuanVideo
(T2V, I2V) / Mochi-1 / LTX-Video pipeline (a hub id or a local folder), switches its
self-attention to Radial Attention (or runs diffusers' own attention with --pattern stock, or
every block through the radial kernel with --pattern dense), generates one video, writes it
as MP4 (PNG frames when no video writer is installed) and prints the time spent in attention
and in total.

Conditioning inputs, passed to the pipelines that take them (a flag a pipeline does not take
is refused by name): --image (image-to-video; a Wan2.2-TI2V-5B or SkyReels-V2
diffusion-forcing text-to-video folder switches to its image-to-video pipeline), --video,
--mask, --reference-image and --conditioning-scale (Wan VACE), --base-frames,
--overlap-history, --ar-step, --causal-block-size and --addnoise-condition (SkyReels-V2
diffusion forcing: long videos in overlapping chunks).

Sequence parallel over N GPUs (Ulysses, through diffusers' context parallelism):
    torchrun --nproc-per-node N -m radial_attention.generate --ulysses N --model ...
Every rank runs the pipeline on its share of the tokens; rank 0 writes the video and prints,
the others write nothing. A rank that fails prints its error and stops the others.
"""

import argparse
import inspect
import os
import sys
import time

from ._video import write_video

_DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m radial_attention.generate",
                                description=__doc__.strip().splitlines()[0])
    p.add_argument("--model", required=True, help="diffusers model id or local pipeline folder")
    p.add_argument("--prompt", default="A cat walks on the grass, realistic style.")
    p.add_argument("--negative-prompt", default=None)
    p.add_argument("--frames", type=int, default=81,
                   help="video frames (the model's rule: 4k + 1; Mochi-1 6k + 1, LTX-Video 8k + 1)")
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--width", type=int, default=832)
    p.add_argument("--steps", type=int, default=50, help="denoising steps")
    p.add_argument("--guidance-scale", type=float, default=None,
                   help="classifier-free guidance scale (default: the pipeline's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pattern", choices=("radial", "dense", "stock"), default="radial",
                   help="radial: Radial Attention; dense: every block through the radial "
                        "kernel; stock: diffusers' own attention (a baseline)")
    p.add_argument("--dense-layers", type=int, default=None,
                   help="first blocks kept dense (default: the model preset's, 1)")
    p.add_argument("--dense-steps", type=int, default=None,
                   help="first denoising steps kept dense (default: the model preset's, e.g. 12; "
                        "Mochi-1 16)")
    p.add_argument("--decay-factor", type=float, default=None,
                   help="band decay (default: the model preset's, e.g. 0.2 for Wan, 0.95 for "
                        "HunyuanVideo and Mochi-1; docs/models.md)")
    p.add_argument("--preset", default=None,
                   help="model preset whose mask rules apply (default: the pipeline's; "
                        "radial plan --help lists them)")
    p.add_argument("--block-size", type=int, choices=(64, 128), default=128)
    p.add_argument("--lora", action="append", default=[],
                   help="LoRA weights (file, folder or hub id); may be repeated")
    p.add_argument("--lora-scale", type=float, default=1.0)
    p.add_argument("--dtype", choices=sorted(_DTYPES), default="bf16")
    p.add_argument("--device", default=None, help="cuda (default when available) or cpu")
    p.add_argument("--cpu-offload", action="store_true",
                   help="enable_model_cpu_offload (less GPU memory, slower)")
    p.add_argument("--fps", type=int, default=16,
                   help="frame rate of the MP4 (SkyReels-V2 also conditions on 16 or 24)")
    p.add_argument("--output", default="radial_video.mp4", help="MP4 path")
    cond = p.add_argument_group("conditioning (passed to the pipelines that take them)")
    cond.add_argument("--image", default=None,
                      help="first frame (file or URL) for image-to-video pipelines")
    cond.add_argument("--video", default=None,
                      help="Wan VACE: control video (MP4/GIF file or URL) the result follows")
    cond.add_argument("--mask", default=None,
                      help="Wan VACE: mask video, white where the control video is regenerated")
    cond.add_argument("--reference-image", action="append", default=None,
                      help="Wan VACE: reference image (subject, style); may be repeated")
    cond.add_argument("--conditioning-scale", type=float, default=None,
                      help="Wan VACE: weight of the control hints")
    cond.add_argument("--base-frames", type=int, default=None,
                      help="SkyReels-V2 diffusion forcing: frames per chunk of a long video")
    cond.add_argument("--overlap-history", type=int, default=None,
                      help="SkyReels-V2 diffusion forcing: frames a chunk shares with the last")
    cond.add_argument("--ar-step", type=int, default=None,
                      help="SkyReels-V2 diffusion forcing: asynchronous step lag (0: synchronous)")
    cond.add_argument("--causal-block-size", type=int, default=None,
                      help="SkyReels-V2 diffusion forcing: latent frames per causal block")
    cond.add_argument("--addnoise-condition", type=float, default=None,
                      help="SkyReels-V2 diffusion forcing: noise on the overlap frames")
    p.add_argument("--ulysses", type=int, default=1,
                   help="sequence-parallel degree: run under torchrun --nproc-per-node N "
                        "with --ulysses N (one GPU per process; gloo on CPUs)")
    args = p.parse_args(argv)
    if args.ulysses < 1:
        p.error(f"--ulysses: expected an int >= 1, got {args.ulysses}")
    return args


# flag -> the pipeline's __call__ argument it fills
_CONDITIONING = {"image": "image", "video": "video", "mask": "mask",
                 "reference_image": "reference_images", "conditioning_scale": "conditioning_scale",
                 "base_frames": "base_num_frames", "overlap_history": "overlap_history",
                 "ar_step": "ar_step", "causal_block_size": "causal_block_size",
                 "addnoise_condition": "addnoise_condition"}
# Text-to-video pipelines whose folder also runs image-to-video (same components).
_IMAGE_TO_VIDEO = {"WanPipeline": "WanImageToVideoPipeline",
                   "SkyReelsV2DiffusionForcingPipeline": "SkyReelsV2DiffusionForcingImageToVideoPipeline"}


def _for_image(pipe, dtype):
    """The image-to-video pipeline of a text-to-video one that has it: Wan2.2-TI2V-5B (a
    WanPipeline with expand_timesteps) and SkyReels-V2 diffusion forcing. dtype: from_pipe
    casts every component to its torch_dtype, float32 unless told."""
    import diffusers

    name = _IMAGE_TO_VIDEO.get(type(pipe).__name__)
    if name == "WanImageToVideoPipeline" and not pipe.config.get("expand_timesteps", False):
        name = None  # Wan2.1 / A14B text-to-video: the image-to-video models are others
    return getattr(diffusers, name).from_pipe(pipe, torch_dtype=dtype) if name else pipe


def conditioning(args, pipe):
    """The pipeline call's conditioning arguments from the flags, loaded (images, videos);
    a flag this pipeline does not take is refused by name."""
    from diffusers.utils import load_image, load_video

    accepted = inspect.signature(pipe.__call__).parameters
    call = {}
    for flag, name in _CONDITIONING.items():
        value = getattr(args, flag)
        if value is None:
            continue
        if name not in accepted:
            raise SystemExit(f"--{flag.replace('_', '-')}: {type(pipe).__name__} takes no "
                             f"{name!r}")
        if flag == "image":
            value = load_image(value)
        elif flag in ("video", "mask"):  # GIF frames may come palette-coded
            value = [frame.convert("RGB") for frame in load_video(value)]
        elif flag == "reference_image":
            value = [load_image(v) for v in value]
        call[name] = value
    image = accepted.get("image")
    if image is not None and image.default is inspect.Parameter.empty and "image" not in call:
        raise SystemExit(f"--image: {type(pipe).__name__} needs a first-frame image")
    if "fps" in accepted:  # SkyReels-V2's frame-rate conditioning (16 or 24)
        call["fps"] = args.fps
    return call


def main(argv=None):
    args = parse_args(argv)
    from radial_attention import parallel

    if args.ulysses == 1 and "WORLD_SIZE" not in os.environ:
        return generate(args, None)
    ranks = parallel.init_from_torchrun(args.ulysses, device=args.device)
    try:
        with parallel.stop_on_error(ranks.rank):
            return generate(args, ranks)
    finally:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def generate(args, ranks):
    """One video; ranks: the process group of a sequence-parallel run, or None."""
    import torch
    from diffusers import DiffusionPipeline

    import radial_attention.diffusers as radial
    from radial_attention import parallel

    if ranks is not None:
        device = ranks.device.type if ranks.device.type == "cpu" else str(ranks.device)
    else:
        device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = getattr(torch, _DTYPES[args.dtype])
    pipe = DiffusionPipeline.from_pretrained(args.model, torch_dtype=dtype)
    if args.image is not None and "image" not in inspect.signature(pipe.__call__).parameters:
        pipe = _for_image(pipe, dtype)
    extra = conditioning(args, pipe)
    vae = getattr(pipe, "vae", None)
    if vae is not None and type(vae).__name__ == "AutoencoderKLWan" and vae.dtype != torch.float32:
        pipe.vae.to(torch.float32)  # Wan's VAE is meant to decode in float32
    for i, lora in enumerate(args.lora):
        pipe.load_lora_weights(lora, adapter_name=f"lora{i}")
    if args.lora:
        pipe.set_adapters([f"lora{i}" for i in range(len(args.lora))],
                          [args.lora_scale] * len(args.lora))
    if args.cpu_offload:
        pipe.enable_model_cpu_offload(**({"device": ranks.device} if ranks is not None else {}))
    else:
        pipe.to(device)

    state = radial.apply(pipe, dense_layers=args.dense_layers, dense_timesteps=args.dense_steps,
                         decay_factor=args.decay_factor, block_size=args.block_size,
                         pattern=args.pattern, model=args.preset)
    state.timing = True
    if ranks is not None:
        parallel.enable_ulysses(pipe)

    call = dict(prompt=args.prompt, num_frames=args.frames, height=args.height, width=args.width,
                num_inference_steps=args.steps, output_type="np",
                generator=torch.Generator(device="cpu").manual_seed(args.seed))
    call.update(extra)
    if args.negative_prompt is not None:
        call["negative_prompt"] = args.negative_prompt
    if args.guidance_scale is not None:
        call["guidance_scale"] = args.guidance_scale

    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = pipe(**call)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    total = time.perf_counter() - start
    if ranks is not None and not ranks.is_writer:
        return 0

    written = write_video(result.frames[0], args.output, args.fps)
    geometry = state.geometry
    s = state.settings
    print(f"pattern          {args.pattern} ({s.model}: dense layers {s.dense_layers}, dense steps "
          f"{s.dense_timesteps}, decay {s.decay_factor}, block {args.block_size})")
    print(f"model            {type(pipe).__name__}, preset {s.model}")
    if geometry is not None:
        print(f"latent geometry  {geometry[0]} frames x {geometry[1]} tokens/frame")
    if ranks is not None:
        print(f"ulysses          {ranks.world} ranks ({ranks.backend}), rank 0 writes")
    for lora in args.lora:
        print(f"lora             {lora} (scale {args.lora_scale})")
    # "dense": the calls of the dense layers and steps (and of --pattern stock), which diffusers'
    # own attention runs; "radial": the calls through our kernel (radial or dense plans).
    print(f"attention calls  radial {state.calls['radial']}, dense {state.calls['stock']}")
    print(f"attention time   {state.attention_seconds:.3f} s")
    print(f"total time       {total:.3f} s")
    print(f"wrote            {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
