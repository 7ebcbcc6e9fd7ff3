#!/usr/bin/env python3
"""One denoising step of full-width video transformers (random bf16 weights) with stock
attention against radial attention: Mochi-1 at its default 848x480, 163 frames and
Wan2.2-TI2V-5B at its default 1280x704, 121 frames.

A step is one transformer forward (batch 1, no guidance batch) under torch.no_grad. Only a few
of each model's blocks are built (--layers, default 8; Mochi-1 has 48, the 5B model 30): per-layer
figures come from timing L blocks and L/2 blocks, per layer = (t(L) - t(L/2)) / (L/2), and
what is left (patch embedding, text and time embeddings, head) is the fixed cost. The
full-depth estimate: fixed + N layers stock, against fixed + the preset's dense layers stock +
the rest radial (the preset's defaults, docs/models.md). Stock runs diffusers' own attention
under the fastest PyTorch SDPA backend for the case's shape (timed first); radial runs
radial_attention.diffusers.apply(dense_layers=0, dense_timesteps=0) with the preset's decay.

usage: bench_models.py OUT_MD [--commit SHA] [--layers 8] [--steps 5] [--models mochi,wan2.2-ti2v-5b]
                       [--tiny]
  --tiny  tiny models at a few frames on the CPU (or GPU when present): checks the logic here
"""
import argparse
import datetime
import math
import os
import platform
import statistics
import sys
import time

import torch

# diffusers' configs of genmo/mochi-1-preview and Wan-AI/Wan2.2-TI2V-5B-Diffusers (blocks set
# per run), their default sizes, and how their inputs look.
MODELS = {
    "mochi": dict(
        title="Mochi-1", cls="MochiTransformer3DModel", full_layers=48, size=(163, 480, 848),
        config=dict(patch_size=2, num_attention_heads=24, attention_head_dim=128,
                    pooled_projection_dim=1536, in_channels=12, text_embed_dim=4096,
                    time_embed_dim=256, max_sequence_length=256),
        tiny=dict(patch_size=2, num_attention_heads=2, attention_head_dim=64,
                  pooled_projection_dim=32, in_channels=12, text_embed_dim=32, time_embed_dim=32,
                  max_sequence_length=16),
        tiny_size=(13, 64, 96), text=256, text_valid=64),
    "wan2.2-ti2v-5b": dict(
        title="Wan2.2-TI2V-5B", cls="WanTransformer3DModel", full_layers=30, size=(121, 704, 1280),
        config=dict(patch_size=(1, 2, 2), num_attention_heads=24, attention_head_dim=128,
                    in_channels=48, out_channels=48, text_dim=4096, freq_dim=256, ffn_dim=14336,
                    cross_attn_norm=True, qk_norm="rms_norm_across_heads", eps=1e-6,
                    rope_max_seq_len=1024),
        tiny=dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=64,
                  in_channels=48, out_channels=48, text_dim=32, freq_dim=32, ffn_dim=64,
                  cross_attn_norm=True, qk_norm="rms_norm_across_heads", eps=1e-6,
                  rope_max_seq_len=64),
        tiny_size=(9, 128, 128), text=512, text_valid=None),
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("out_md")
    p.add_argument("--commit", default="unknown")
    p.add_argument("--layers", type=int, default=8, help="blocks timed (even, >= 2)")
    p.add_argument("--steps", type=int, default=5, help="timed steps (after one warm-up step)")
    p.add_argument("--models", default=",".join(MODELS), help="comma-separated: " + ", ".join(MODELS))
    p.add_argument("--tiny", action="store_true", help="tiny models and sizes (a logic check)")
    args = p.parse_args(argv)
    if args.layers < 2 or args.layers % 2:
        p.error(f"--layers: expected an even number >= 2, got {args.layers}")
    args.models = [m for m in args.models.split(",") if m]
    for m in args.models:
        if m not in MODELS:
            p.error(f"--models: expected names from {', '.join(MODELS)}, got {m}")
    return args


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build(spec, config, layers, device):
    import diffusers

    torch.manual_seed(0)
    with torch.device(device):
        model = getattr(diffusers, spec["cls"])(num_layers=layers, **config)
    model.to(torch.bfloat16)
    keep = set(getattr(model, "_keep_in_fp32_modules", None) or ())
    for name, module in model.named_modules():  # as from_pretrained(torch_dtype=bf16) does
        if keep & set(name.split(".")):
            module.float()
    return model.eval()


def blocks_of(model):
    return "blocks" if hasattr(model, "blocks") else "transformer_blocks"


def inputs(name, spec, config, geometry, device):
    """The transformer's inputs for one step at the preset's latent geometry."""
    import radial_attention as ra

    frames, height, width = geometry
    preset = ra.model_preset(name)
    latent_frames = (frames - 1) // preset.temporal_compression + 1
    s = preset.spatial_compression
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, config["in_channels"], latent_frames, height // s, width // s, generator=g)
    text_dim = config.get("text_embed_dim", config.get("text_dim"))
    text = min(spec["text"], config.get("max_sequence_length", spec["text"]))
    enc = torch.randn(1, text, text_dim, generator=g).to(device, torch.bfloat16)
    kwargs = dict(hidden_states=x.to(device, torch.bfloat16), encoder_hidden_states=enc,
                  timestep=torch.tensor([500.0], device=device), return_dict=False)
    if spec["cls"] == "MochiTransformer3DModel":
        mask = torch.zeros(1, text, dtype=torch.long)
        mask[:, : min(spec["text_valid"] or text, text)] = 1
        kwargs["encoder_attention_mask"] = mask.to(device)
    tokens = latent_frames * (height // preset.pixels_per_token) * (width // preset.pixels_per_token)
    return kwargs, latent_frames, tokens


def time_steps(model, kwargs, steps, device, sdpa_backend=None):
    from contextlib import nullcontext

    context = nullcontext
    if sdpa_backend is not None:
        import inspect

        from torch.nn.attention import SDPBackend, sdpa_kernel

        # The chosen backend first; MATH after it for the small attentions it cannot take
        # (Mochi's text pooler has one head of 4096 channels).
        backends = [sdpa_backend, SDPBackend.MATH]
        if "set_priority" in inspect.signature(sdpa_kernel).parameters:
            context = lambda: sdpa_kernel(backends, set_priority=True)  # noqa: E731
        else:
            context = lambda: sdpa_kernel(backends)  # noqa: E731

    def step():
        with torch.no_grad(), context():
            return model(**kwargs)[0]

    out = step()  # warm-up (allocator, kernels, radial plan)
    finite = bool(torch.isfinite(out).all())
    times = []
    for _ in range(steps):
        sync(device)
        start = time.perf_counter()
        step()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times), finite


def best_sdpa_backend(config, seq, device):
    """The fastest SDPA backend for the attention forward at the case's shape."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    heads, dim = config["num_attention_heads"], config["attention_head_dim"]
    q, k, v = (torch.randn(1, heads, seq, dim, device=device, dtype=torch.bfloat16) for _ in range(3))
    candidates = [SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION]
    if device.type != "cuda":
        candidates = [SDPBackend.MATH, SDPBackend.FLASH_ATTENTION]
    timings = {}
    for backend in candidates:
        try:
            with sdpa_kernel(backend), torch.no_grad():
                for i in range(3):
                    sync(device)
                    start = time.perf_counter()
                    torch.nn.functional.scaled_dot_product_attention(q, k, v)
                    sync(device)
                    if i:
                        timings[backend] = min(timings.get(backend, math.inf), time.perf_counter() - start)
        except RuntimeError as e:
            print(f"   SDPA {backend.name}: not available here ({str(e).splitlines()[0][:100]})", flush=True)
    if not timings:
        raise RuntimeError("no SDPA backend runs here")
    for backend, t in sorted(timings.items(), key=lambda kv: kv[1]):
        print(f"   SDPA {backend.name}: {t * 1e3:.1f} ms forward", flush=True)
    return min(timings, key=timings.get)


def run_model(args, name, device):
    import radial_attention as ra
    import radial_attention.diffusers as radial

    spec = MODELS[name]
    config = spec["tiny"] if args.tiny else spec["config"]
    geometry = spec["tiny_size"] if args.tiny else spec["size"]
    preset = ra.model_preset(name)
    kwargs, latent_frames, video_tokens = inputs(name, spec, config, geometry, device)
    # Joint attention (Mochi-1): the video and the valid text tokens, which both the stock and
    # the radial processor gather; Wan's text goes through cross-attention.
    mask = kwargs.get("encoder_attention_mask")
    text = int(mask.sum()) if mask is not None else 0
    print(f"== {spec['title']}: {geometry[0]} frames {geometry[2]}x{geometry[1]} -> "
          f"{latent_frames} latent frames, {video_tokens} video tokens", flush=True)
    backend = best_sdpa_backend(config, video_tokens + text, device)
    model = build(spec, config, args.layers, device)
    attr = blocks_of(model)
    all_blocks = getattr(model, attr)
    half = args.layers // 2
    row = dict(model=spec["title"], preset=name, size=geometry, latent_frames=latent_frames,
               tokens=video_tokens, text=text, backend=backend.name, full_layers=spec["full_layers"])
    for pattern in ("stock", "radial"):
        times = {}
        for layers in (args.layers, half):
            setattr(model, attr, torch.nn.ModuleList(list(all_blocks)[:layers]))
            if pattern == "radial":
                state = radial.apply(model, dense_layers=0, dense_timesteps=0, block_size=128,
                                     model=name)
            try:
                t, finite = time_steps(model, kwargs, args.steps, device,
                                       backend if pattern == "stock" else None)
            finally:
                if pattern == "radial":
                    radial.remove(model)
            if not finite:
                raise RuntimeError(f"{spec['title']} {pattern}: the output is not finite")
            times[layers] = t
            print(f"   {pattern:6s} {layers} blocks: {t * 1e3:.1f} ms/step", flush=True)
        per_layer = (times[args.layers] - times[half]) / (args.layers - half)
        row[pattern] = dict(step=times[args.layers], per_layer=per_layer,
                            fixed=times[args.layers] - args.layers * per_layer)
    frames, tokens_per_frame = state.geometry
    plan = ra.plan(frames=frames, tokens_per_frame=tokens_per_frame, text_tokens=text,
                   model=name, decay_factor=preset.decay_factor, block_size=128)
    row.update(density=plan.density, decay=preset.decay_factor, dense_layers=preset.dense_layers)
    setattr(model, attr, all_blocks)
    del model
    if device.type == "cuda":
        torch.cuda.empty_cache()
    s, r, n, d = row["stock"], row["radial"], row["full_layers"], row["dense_layers"]
    row["full_stock"] = s["fixed"] + n * s["per_layer"]
    row["full_radial"] = s["fixed"] + d * s["per_layer"] + (n - d) * r["per_layer"]
    return row


def write_markdown(args, rows, device, path):
    import diffusers

    card = (torch.cuda.get_device_name(device) if device.type == "cuda"
            else f"CPU ({platform.processor() or platform.machine()})")
    lines = [f"# One denoising step: radial vs stock attention ({'tiny logic check' if args.tiny else 'full-width models'})",
             "", f"Card: **{card}**. Date: {datetime.date.today()}. Commit: {args.commit}. "
             f"torch {torch.__version__}, diffusers {diffusers.__version__}.", "",
             "One step = one transformer forward, batch 1, bf16 random weights, at the model's "
             f"default size; {args.layers} blocks built and timed (and {args.layers // 2} for the "
             f"per-layer figures), median of {args.steps} steps after a warm-up. Stock: diffusers' "
             "own attention under the fastest SDPA backend for the shape. Radial: every timed block "
             "radial, block 128, the preset's decay. The full-depth estimate keeps the preset's "
             "dense layers stock (docs/models.md); dense warm-up steps are not counted (a radial "
             "step's cost).", "",
             "| model | video | latent tokens | attention | backend | step (ms) | per layer (ms) | fixed (ms) |",
             "|---|---|---:|---|---|---:|---:|---:|"]
    for r in rows:
        f, h, w = r["size"]
        video = f"{f} x {w}x{h}"
        tokens = f"{r['latent_frames']} x {r['tokens'] // r['latent_frames']} = {r['tokens']}" + (
            f" + {r['text']} valid text" if r["text"] else "")
        for pattern, backend in (("stock", r["backend"]),
                                 ("radial", f"radial_attention (density {r['density']:.3f}, decay {r['decay']})")):
            t = r[pattern]
            lines.append(f"| {r['model']} | {video} | {tokens} | {pattern} | {backend} | {t['step'] * 1e3:.1f} | "
                         f"{t['per_layer'] * 1e3:.1f} | {t['fixed'] * 1e3:.1f} |")
    lines += ["", "Speedup (stock time / radial time):", "",
              "| model | measured blocks | per layer | full depth | stock full (s) | radial full (s) | full-depth speedup |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        s, q = r["stock"], r["radial"]
        lines.append(f"| {r['model']} | {s['step'] / q['step']:.2f}x | {s['per_layer'] / q['per_layer']:.2f}x | "
                     f"{r['full_layers']} layers ({r['dense_layers']} stock) | {r['full_stock']:.3f} | "
                     f"{r['full_radial']:.3f} | {r['full_stock'] / r['full_radial']:.2f}x |")
    text = "\n".join(lines) + "\n"
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return text


def main(argv=None):
    args = parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not args.tiny and device.type != "cuda":
        print("bench_models.py: needs a CUDA GPU for the full-width models (use --tiny here)",
              file=sys.stderr)
        return 2
    start = time.perf_counter()
    rows = [run_model(args, name, device) for name in args.models]
    print(write_markdown(args, rows, device, args.out_md))
    print(f"bench_models.py: {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
