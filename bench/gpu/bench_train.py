#!/usr/bin/env python3
"""The cost of LoRA fine-tuning with radial attention against dense: one training step
(forward, backward, AdamW) of a full-width Wan2.1-14B transformer (random bf16 weights, a
few of its 40 blocks), gradient checkpointing of the blocks, a rank-32 LoRA (fp32) on the
attention projections, at 81 frames and 4x that (321 frames) at 480x832.

Dense runs diffusers' stock attention under the fastest PyTorch SDPA backend for the case
(cuDNN, flash or memory-efficient, picked by timing attention forward + backward at the
case's shape); radial runs radial_attention.diffusers.apply(dense_layers=0). Per-layer
figures come from timing the model with L blocks and with L/2 blocks: per layer = (t(L) -
t(L/2)) / (L/2); what is left (patch embedding, text and time embeddings, head, optimizer on
the other parameters) is the fixed cost. The 40-block estimate: fixed + 40 layers dense,
against fixed + 1 dense layer + 39 radial layers (the dense first layer, as at inference).
Peak GPU memory is torch.cuda.max_memory_allocated over the timed steps of the L-block model.

--compile compiles every block, dense and radial alike, as `radial-train fit --compile` does
(radial_attention.train.compiled: torch.compile of each repeated block, Inductor, static
shapes): it fuses the blocks' elementwise work (float32 norms and modulation, RoPE, gates,
the LoRA's casts), the same absolute time on both sides, which is what caps radial's ratio.
The warm-up step compiles (its time is printed); the timed steps run the compiled blocks.
The dense blocks are traced inside the SDPA backend's context, and the backend is chosen when
the graph is traced: the compiled graph calls that backend's kernel (cuDNN) as eager does.

usage: bench_train.py OUT_MD [--commit SHA] [--layers 4] [--frames 81,321] [--steps 3]
                      [--decay-factor 1.0] [--rank 32] [--compile] [--sdpa auto] [--tiny]
  --sdpa  the dense side's SDPA backend (cudnn, flash, efficient, math); auto times them first
  --tiny  a tiny model on the CPU (or GPU when present) at a few frames: checks the logic here
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

# Wan2.1-T2V-14B (diffusers' config of Wan-AI/Wan2.1-T2V-14B-Diffusers), blocks set per run.
WAN_14B = dict(patch_size=(1, 2, 2), num_attention_heads=40, attention_head_dim=128, in_channels=16,
               out_channels=16, text_dim=4096, freq_dim=256, ffn_dim=13824, cross_attn_norm=True,
               qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024)
TINY = dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=64, in_channels=4,
            out_channels=4, text_dim=32, freq_dim=32, ffn_dim=64, cross_attn_norm=True,
            qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=64)
FULL_LAYERS = 40
# --sdpa names -> torch.nn.attention.SDPBackend member names
SDPA_BACKENDS = {"cudnn": "CUDNN_ATTENTION", "flash": "FLASH_ATTENTION",
                 "efficient": "EFFICIENT_ATTENTION", "math": "MATH"}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("out_md")
    p.add_argument("--commit", default="unknown")
    p.add_argument("--layers", type=int, default=4, help="blocks timed (even, >= 2)")
    p.add_argument("--frames", default="81,321", help="video frames, comma-separated (4k+1)")
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--width", type=int, default=832)
    p.add_argument("--steps", type=int, default=3, help="timed steps (after one warm-up step)")
    p.add_argument("--decay-factor", type=float, default=1.0,
                   help="radial band decay (1.0: the paper's setting for longer Wan videos)")
    p.add_argument("--rank", type=int, default=32)
    p.add_argument("--text-tokens", type=int, default=512)
    p.add_argument("--compile", action="store_true",
                   help="torch.compile each block (dense and radial alike), as fit --compile")
    p.add_argument("--sdpa", choices=("auto",) + tuple(SDPA_BACKENDS), default="auto",
                   help="dense attention's SDPA backend (auto: the fastest, timed at the case's shape)")
    p.add_argument("--tiny", action="store_true", help="tiny model and sizes (a logic check)")
    args = p.parse_args(argv)
    if args.layers < 2 or args.layers % 2:
        p.error(f"--layers: expected an even number >= 2, got {args.layers}")
    args.frames = [int(f) for f in args.frames.split(",")]
    if args.tiny:
        args.height = args.width = 64 if args.height == 480 else args.height
        if args.frames == [81, 321]:
            args.frames = [9, 17]
        args.text_tokens = min(args.text_tokens, 16)
    return args


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build(config, layers, device, rank):
    """Random bf16 blocks with a fp32 LoRA on the attention projections, checkpointed."""
    from diffusers import WanTransformer3DModel
    from peft import LoraConfig

    torch.manual_seed(0)
    with torch.device(device):
        model = WanTransformer3DModel(num_layers=layers, **config)
    model.to(torch.bfloat16)
    # As from_pretrained(torch_dtype=bf16) does: the modules diffusers keeps in float32.
    keep = set(getattr(model, "_keep_in_fp32_modules", None) or ())
    for name, module in model.named_modules():
        if keep & set(name.split(".")):
            module.float()
    model.requires_grad_(False)
    model.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights=True,
                                 target_modules=r"blocks\.\d+\.(attn1|attn2)\.(to_q|to_k|to_v|to_out\.0)"))
    params = [p for n, p in model.named_parameters() if "lora_" in n]
    for p in params:
        p.data = p.data.float()
        p.requires_grad_(True)
    # lora_B starts at zero: make it random so the backward does the full work everywhere.
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 1e-3)
    model.enable_gradient_checkpointing()
    model.train()
    return model, params


def inputs(config, frames, height, width, text_tokens, device):
    g = torch.Generator().manual_seed(1)
    latent_frames = (frames - 1) // 4 + 1
    shape = (1, config["in_channels"], latent_frames, height // 8, width // 8)
    x = torch.randn(shape, generator=g).to(device, torch.bfloat16)
    text = torch.randn(1, text_tokens, config["text_dim"], generator=g).to(device, torch.bfloat16)
    target = torch.randn(shape, generator=g).to(device, torch.bfloat16)
    return dict(hidden_states=x, timestep=torch.tensor([500.0], device=device),
                encoder_hidden_states=text, return_dict=False), target


def time_steps(model, params, kwargs, target, steps, device, sdpa_backend=None):
    """Median seconds of one training step, and the peak memory over the timed steps."""
    from contextlib import nullcontext

    optimizer = torch.optim.AdamW(params, lr=1e-5)
    context = nullcontext
    if sdpa_backend is not None:
        from torch.nn.attention import sdpa_kernel

        context = lambda: sdpa_kernel(sdpa_backend)  # noqa: E731

    def step():
        optimizer.zero_grad(set_to_none=True)
        with context():
            out = model(**kwargs)[0]
            loss = torch.nn.functional.mse_loss(out.float(), target.float())
            loss.backward()
        optimizer.step()

    start = time.perf_counter()
    step()  # warm-up (allocator, kernels, radial plan; compilation of compiled blocks)
    sync(device)
    print(f"   warm-up step {time.perf_counter() - start:.1f} s", flush=True)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(steps):
        sync(device)
        start = time.perf_counter()
        step()
        sync(device)
        times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    del optimizer
    return statistics.median(times), peak


def best_sdpa_backend(config, frames, height, width, device):
    """The fastest SDPA backend for attention forward + backward at the case's shape."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    heads, dim = config["num_attention_heads"], config["attention_head_dim"]
    seq = ((frames - 1) // 4 + 1) * (height // 16) * (width // 16)
    q, k, v = (torch.randn(1, heads, seq, dim, device=device, dtype=torch.bfloat16, requires_grad=True)
               for _ in range(3))
    candidates = [SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION]
    if device.type != "cuda":
        candidates = [SDPBackend.MATH, SDPBackend.FLASH_ATTENTION]
    timings = {}
    for backend in candidates:
        try:
            with sdpa_kernel(backend):
                for i in range(3):
                    sync(device)
                    start = time.perf_counter()
                    torch.nn.functional.scaled_dot_product_attention(q, k, v).sum().backward()
                    sync(device)
                    if i:  # the first call is a warm-up
                        timings[backend] = min(timings.get(backend, math.inf), time.perf_counter() - start)
        except RuntimeError as e:
            print(f"   SDPA {backend.name}: not available here ({str(e).splitlines()[0][:100]})", flush=True)
    if not timings:
        raise RuntimeError("no SDPA backend runs here")
    for backend, t in sorted(timings.items(), key=lambda kv: kv[1]):
        print(f"   SDPA {backend.name}: {t * 1e3:.1f} ms forward + backward", flush=True)
    return min(timings, key=timings.get)


def run_case(args, config, frames, device):
    import radial_attention.diffusers as radial
    from radial_attention.train import compiled

    rows = []
    kwargs, target = inputs(config, frames, args.height, args.width, args.text_tokens, device)
    seq = kwargs["hidden_states"].shape[2] * (args.height // 16) * (args.width // 16)
    if args.sdpa == "auto":
        backend = best_sdpa_backend(config, frames, args.height, args.width, device)
    else:  # given: saves the timing of every backend at the case's shape (a minute at 321 frames)
        from torch.nn.attention import SDPBackend

        backend = getattr(SDPBackend, SDPA_BACKENDS[args.sdpa])
    model, params = build(config, args.layers, device, args.rank)
    if args.compile:
        compiled.compile_blocks(model)
    half = args.layers // 2
    all_blocks = model.blocks
    for name in ("dense", "radial"):
        times = {}
        peak = float("nan")
        error = None
        for layers in (args.layers, half):
            model.blocks = torch.nn.ModuleList(list(all_blocks)[:layers])
            used = [p for n, p in model.named_parameters() if "lora_" in n]
            if name == "radial":
                radial.apply(model, dense_layers=0, dense_timesteps=0, decay_factor=args.decay_factor,
                             block_size=128)
            try:
                t, mem = time_steps(model, used, kwargs, target, args.steps, device,
                                    backend if name == "dense" else None)
            except (NotImplementedError, RuntimeError, ValueError) as e:  # e.g. no CUDA backward yet, OOM
                error = f"{type(e).__name__}: {str(e).splitlines()[0][:160]}"
                print(f"   {name}: FAILED: {error}", flush=True)
                break
            finally:
                if name == "radial":
                    radial.remove(model)
            times[layers] = t
            if layers == args.layers:
                peak = mem
            print(f"   {name:6s} {layers} blocks: {t:.3f} s/step, peak {mem:.1f} GiB", flush=True)
        if error is not None:
            rows.append(dict(frames=frames, seq=seq, attention=name, error=error))
            continue
        per_layer = (times[args.layers] - times[half]) / (args.layers - half)
        fixed = times[args.layers] - args.layers * per_layer
        if name == "radial":
            import radial_attention as ra

            density = ra.plan(frames=kwargs["hidden_states"].shape[2],
                              tokens_per_frame=(args.height // 16) * (args.width // 16), model="wan",
                              decay_factor=args.decay_factor, block_size=128).density
        rows.append(dict(frames=frames, seq=seq, attention=name,
                         backend=(backend.name if name == "dense"
                                  else f"radial_attention (density {density:.3f})")
                         + (", compiled blocks" if args.compile else ""),
                         step=times[args.layers], per_layer=per_layer, fixed=fixed, peak=peak))
    model.blocks = all_blocks
    del model, params
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return rows


def summarise(rows, layers):
    """Rows plus the 40-block estimate and the radial / dense ratios per frame count."""
    by = {(r["frames"], r["attention"]): r for r in rows if "error" not in r}
    ratios = []
    for frames in sorted({r["frames"] for r in rows}):
        d, r = by.get((frames, "dense")), by.get((frames, "radial"))
        if d is None or r is None:
            continue
        full_dense = d["fixed"] + FULL_LAYERS * d["per_layer"]
        full_radial = d["fixed"] + d["per_layer"] + (FULL_LAYERS - 1) * r["per_layer"]
        ratios.append(dict(frames=frames, seq=d["seq"], measured=d["step"] / r["step"],
                           per_layer=d["per_layer"] / r["per_layer"], full_dense=full_dense,
                           full_radial=full_radial, full=full_dense / full_radial))
    return ratios


def write_markdown(args, rows, ratios, device, path):
    card = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({platform.processor() or platform.machine()})"
    import diffusers

    lines = [f"# LoRA training step: radial vs dense attention ({'tiny logic check' if args.tiny else 'Wan2.1-14B width'})", "",
             f"Card: **{card}**. Date: {datetime.date.today()}. Commit: {args.commit}. "
             f"torch {torch.__version__}, diffusers {diffusers.__version__}.", "",
             f"One step = forward, backward, AdamW; bf16 weights, rank-{args.rank} fp32 LoRA on the "
             f"attention projections, gradient checkpointing of every block; {args.height}x{args.width}, "
             f"{args.text_tokens} text tokens, batch 1; {args.layers} blocks timed (and {args.layers // 2} "
             f"for the per-layer figures); median of {args.steps} steps after a warm-up. Radial: "
             f"decay {args.decay_factor}, block 128, every timed block radial. Dense: diffusers' stock "
             + ("attention under the fastest SDPA backend for the shape (timed first). "
                if args.sdpa == "auto" else f"attention under the SDPA backend given ({args.sdpa}). ")
             + "Blocks: "
             + ("compiled, dense and radial alike (torch.compile of each block, Inductor, static "
                "shapes, as `radial-train fit --compile`; the warm-up step compiles)."
                if args.compile else "eager (no torch.compile)."), "",
             "| frames | tokens | attention | backend | step (s) | per layer (s) | fixed (s) | peak GiB |",
             "|---:|---:|---|---|---:|---:|---:|---:|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['frames']} | {r['seq']} | {r['attention']} | failed: {r['error']} | | | | |")
        else:
            lines.append(f"| {r['frames']} | {r['seq']} | {r['attention']} | {r['backend']} | {r['step']:.3f} | "
                         f"{r['per_layer']:.3f} | {r['fixed']:.3f} | "
                         f"{'n/a' if math.isnan(r['peak']) else format(r['peak'], '.1f')} |")
    lines += ["", f"Radial against dense (dense time / radial time); the {FULL_LAYERS}-block estimate keeps "
              "the first block dense, as at inference:", "",
              f"| frames | measured {args.layers} blocks | per layer | {FULL_LAYERS} blocks dense (s) | "
              f"{FULL_LAYERS} blocks radial (s) | {FULL_LAYERS}-block ratio |", "|---:|---:|---:|---:|---:|---:|"]
    for q in ratios:
        lines.append(f"| {q['frames']} | {q['measured']:.2f}x | {q['per_layer']:.2f}x | {q['full_dense']:.2f} | "
                     f"{q['full_radial']:.2f} | {q['full']:.2f}x |")
    text = "\n".join(lines) + "\n"
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return text


def main(argv=None):
    args = parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not args.tiny and device.type != "cuda":
        print("bench_train.py: needs a CUDA GPU for the full-width model (use --tiny here)", file=sys.stderr)
        return 2
    config = TINY if args.tiny else WAN_14B
    from radial_attention.train import compiled

    rows = []
    # Compiled blocks: about 4 graphs per frame count (dense and radial, each with and without
    # a gradient at the block's input); room for them all, so that none runs eagerly.
    with compiled.recompile_limit(compiled.GRAPHS_PER_SHAPE * 2 * len(args.frames)):
        for frames in args.frames:
            print(f"== {frames} frames {args.height}x{args.width}", flush=True)
            rows += run_case(args, config, frames, device)
    ratios = summarise(rows, args.layers)
    print(write_markdown(args, rows, ratios, device, args.out_md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
