"""radial-train: LoRA fine-tuning of video diffusion transformers with radial attention.

    radial-train prepare --data VIDEOS --model PIPELINE --cache CACHE --frames 81 --resolution 480x832
    radial-train fit --model PIPELINE --cache CACHE --output OUT --max-steps 2000
    torchrun --nproc-per-node 8 -m radial_attention.train fit ...      (data parallel)
    torchrun --nproc-per-node 8 -m radial_attention.train fit --ulysses 4 ...
        (sequence parallel: groups of 4 ranks share each video's tokens; 2 groups data parallel)

Every flag can also come from a TOML file (--config FILE; keys are the flag names, with
dashes or underscores); flags given on the command line win over the file.
"""

import argparse
import dataclasses
import pathlib
import sys

from .._errors import RadialError


def _resolution_list(text):
    from .prepare import parse_resolution

    return [parse_resolution(r) for r in str(text).split(",") if r.strip()]


def _int_list(text):
    try:
        return [int(x) for x in str(text).split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated ints, got {text!r}") from None


def _range(text):
    try:
        lo, hi = (float(x) for x in str(text).split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH, got {text!r}") from None
    return (lo, hi)


def _bool(text):
    if isinstance(text, bool):
        return text
    if str(text).lower() in ("1", "true", "yes", "on"):
        return True
    if str(text).lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def build_parser():
    p = argparse.ArgumentParser(prog="radial-train", description=__doc__.strip().splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.strip().splitlines()[1:]))
    sub = p.add_subparsers(dest="command", required=True)

    pre = sub.add_parser("prepare", help="encode videos and captions into a latent cache")
    pre.add_argument("--config", help="TOML file of flag values")
    pre.add_argument("--data", help="folder of videos with captions (.txt beside each, or "
                     "metadata.csv / metadata.jsonl)")
    pre.add_argument("--model", help="diffusers pipeline folder or hub id (its VAE and text encoder)")
    pre.add_argument("--cache", help="output folder of the cache")
    pre.add_argument("--frames", type=_int_list, default=[81],
                     help="frame counts (4k+1), comma-separated: each clip goes to the longest it holds")
    pre.add_argument("--resolution", type=_resolution_list, default=[(480, 832)],
                     help="HEIGHTxWIDTH list, comma-separated: each clip goes to the nearest aspect ratio")
    pre.add_argument("--frame-stride", type=int, default=1, help="take every n-th frame")
    pre.add_argument("--max-sequence-length", type=int, default=None,
                     help="text tokens (default: the pipeline's, 512 Wan / 256 HunyuanVideo)")
    pre.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default="float32",
                     help="the text encoder's dtype (Wan's VAE always runs in float32)")
    pre.add_argument("--cache-dtype", choices=("float32", "bfloat16"), default="float32")
    pre.add_argument("--device", default=None)
    pre.add_argument("--no-progress", dest="progress", action="store_false")

    fit = sub.add_parser("fit", help="train a LoRA on a cache")
    fit.add_argument("--config", help="TOML file of flag values")
    fit.add_argument("--model", help="diffusers pipeline folder or hub id")
    fit.add_argument("--cache", help="folder written by prepare")
    fit.add_argument("--output", help="folder for the LoRA, checkpoints/ and losses.jsonl")
    fit.add_argument("--transformer", choices=("transformer", "transformer_2"), default="transformer",
                     help="which transformer (Wan2.2 A14B: transformer_2 is the low-noise expert)")
    fit.add_argument("--rank", type=int, default=32)
    fit.add_argument("--alpha", type=float, default=None, help="LoRA alpha (default: the rank)")
    fit.add_argument("--dropout", type=float, default=0.0)
    fit.add_argument("--feed-forward", type=_bool, nargs="?", const=True, default=False,
                     help="also adapt the blocks' feed-forward layers")
    fit.add_argument("--pattern", choices=("radial", "dense", "stock"), default="radial",
                     help="radial; dense: every block through our kernel; stock: diffusers' own "
                          "attention (a baseline)")
    fit.add_argument("--dense-layers", type=int, default=1, help="first blocks kept dense")
    fit.add_argument("--decay-factor", type=float, default=None)
    fit.add_argument("--block-size", type=int, choices=(64, 128), default=128)
    fit.add_argument("--learning-rate", type=float, default=1e-4)
    fit.add_argument("--weight-decay", type=float, default=0.01)
    fit.add_argument("--warmup-steps", type=int, default=0)
    fit.add_argument("--max-steps", type=int, default=1000)
    fit.add_argument("--batch-size", type=int, default=1, help="per process")
    fit.add_argument("--grad-accum", type=int, default=1)
    fit.add_argument("--max-grad-norm", type=float, default=1.0, help="0: no clipping")
    fit.add_argument("--gradient-checkpointing", type=_bool, nargs="?", const=True, default=True)
    fit.add_argument("--compile", type=_bool, nargs="?", const=True, default=False,
                     help="torch.compile the transformer's repeated blocks (Inductor; the first "
                          "step of each bucket compiles, later steps run faster)")
    fit.add_argument("--shift", type=float, default=None, help="timestep shift (default: the scheduler's)")
    fit.add_argument("--timestep-sampling", choices=("uniform", "logit_normal"), default="uniform")
    fit.add_argument("--timestep-range", type=_range, default=(0.0, 1000.0),
                     help="LOW,HIGH of the timesteps trained (e.g. a Wan2.2 expert's range)")
    fit.add_argument("--guidance", type=float, default=6.0, help="HunyuanVideo's embedded guidance")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--dtype", choices=("bf16", "fp16", "fp32"), default="bf16",
                     help="base weights (LoRA parameters are float32)")
    fit.add_argument("--device", default=None)
    fit.add_argument("--checkpoint-every", type=int, default=100)
    fit.add_argument("--keep-checkpoints", type=int, default=3)
    fit.add_argument("--resume", default=None, help='"latest" or a checkpoint folder')
    fit.add_argument("--ulysses", type=int, default=1,
                     help="Ulysses sequence parallelism: ranks per group (torchrun with a "
                          "multiple of N processes; the rest is data parallelism)")
    fit.add_argument("--no-progress", dest="progress", action="store_false")
    return p, {"prepare": pre, "fit": fit}


def _apply_config(parser, sub, path):
    """Sets the TOML file's values as the subcommand's defaults (flags still win)."""
    import tomllib

    try:
        with open(path, "rb") as f:
            values = tomllib.load(f)
    except OSError as e:
        parser.error(f"--config: expected a readable TOML file, got {path} ({e.strerror})")
    except tomllib.TOMLDecodeError as e:
        parser.error(f"--config: expected valid TOML, got {path} ({e})")
    actions = {a.dest: a for a in sub._actions}
    defaults = {}
    for key, value in values.items():
        dest = key.replace("-", "_")
        if dest not in actions or dest in ("help", "config"):
            parser.error(f"--config: {path}: unknown key {key!r} (expected one of the flags of "
                         f"`radial-train {sub.prog.split()[-1]}`)")
        action = actions[dest]
        if action.type is not None and isinstance(value, str):
            value = action.type(value)
        elif dest == "resolution":
            value = [v if isinstance(v, (list, tuple)) else _resolution_list(v)[0] for v in
                     (value if isinstance(value, list) else [value])]
        elif dest == "frames" and isinstance(value, int):
            value = [value]
        elif dest == "timestep_range":
            value = tuple(float(v) for v in value)
        defaults[dest] = value
    sub.set_defaults(**defaults)


def parse_args(argv=None):
    parser, subs = build_parser()
    args = parser.parse_args(argv)
    if args.config:
        _apply_config(parser, subs[args.command], args.config)
        args = parser.parse_args(argv)
    required = {"prepare": ("data", "model", "cache"), "fit": ("model", "cache", "output")}
    missing = [f"--{k.replace('_', '-')}" for k in required[args.command] if getattr(args, k) is None]
    if missing:
        subs[args.command].error(f"required (on the command line or in --config): {', '.join(missing)}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        if args.command == "prepare":
            from .prepare import prepare

            manifest = prepare(args.data, args.model, args.cache, frames=args.frames,
                               resolutions=args.resolution, frame_stride=args.frame_stride,
                               max_sequence_length=args.max_sequence_length, device=args.device,
                               dtype=args.dtype, cache_dtype=args.cache_dtype, progress=args.progress)
            buckets = {}
            for s in manifest["samples"]:
                key = f"{s['frames']} frames {s['height']}x{s['width']}"
                buckets[key] = buckets.get(key, 0) + 1
            print(f"wrote {len(manifest['samples'])} clips to {pathlib.Path(args.cache)}: "
                  + ", ".join(f"{n} x {k}" for k, n in sorted(buckets.items())))
            return 0
        from .fit import FitConfig, fit

        fields = {f.name for f in dataclasses.fields(FitConfig)}
        config = FitConfig(**{k: v for k, v in vars(args).items() if k in fields})
        result = fit(config)
        if result["lora"] is not None:
            print(f"wrote LoRA {result['lora']} (load with pipe.load_lora_weights or "
                  f"python -m radial_attention.generate --lora {result['lora']})")
        return 0
    except RadialError as e:
        print(f"radial-train {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
