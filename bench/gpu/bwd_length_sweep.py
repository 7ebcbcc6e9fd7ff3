#!/usr/bin/env python3
"""Does the Hopper backward pay a fixed cost per CTA (per key block)? Times the library's
backward and cuDNN's dense backward on dense plans of several lengths (Wan2.1 geometry, 768x1280,
head dim 128, bf16), with the mean SM clock of each timing, and prints FLOP per SM cycle.

A CTA's work is its column's list: L query blocks on a dense plan of L blocks. If a CTA costs
a + b L cycles, cycles per block pair go as b + a / L: the fit over the lengths gives a / b, the
fixed cost in blocks of work (HOPPER_NOTES "Backward round 7").

  bench/gpu/bwd_length_sweep.py [--frames 9,17,33,69] [--heads 40] [--choice TEXT]
radial_attention must be importable with a CUDA library (RADIAL_C_LIBRARY).
"""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import BLOCK, D, ClockLog, median_ms  # noqa: E402
from bench_backward import CBackwardWithChoice  # noqa: E402

BWD_FACTOR = 2.5 * 4  # 2.5 x the forward's 4 x D FLOP per score


def fit(points):
    """Least squares of y = b + a x over (x, y): returns (a, b)."""
    n = len(points)
    sx = sum(x for x, _ in points)
    sy = sum(y for _, y in points)
    sxx = sum(x * x for x, _ in points)
    sxy = sum(x * y for x, y in points)
    a = (n * sxy - sx * sy) / (n * sxx - sx * sx)
    return a, (sy - a * sx) / n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", default="9,17,33,69")
    ap.add_argument("--heads", type=int, default=40)
    ap.add_argument("--choice", default="family=hopper,direction=backward")
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    import radial_attention
    from torch.nn.attention import SDPBackend, sdpa_kernel

    props = torch.cuda.get_device_properties(0)
    print(f"{props.name}, {props.multi_processor_count} SMs; choice {args.choice}", flush=True)
    backward = CBackwardWithChoice()
    clocks = ClockLog()
    rows = []
    for frames in (int(x) for x in args.frames.split(",")):
        plan = radial_attention.plan(video_frames=frames, height=768, width=1280, model="wan",
                                     block_size=BLOCK, pattern="dense")
        s, h = plan.seq_len, args.heads
        q, k, v, d_out = (torch.randn(1, h, s, D, device="cuda", dtype=torch.bfloat16)
                          for _ in range(4))
        with torch.no_grad():
            out, lse = radial_attention.attention(q, k, v, plan, layout="bhsd", return_lse=True)
        grads = [torch.empty_like(q) for _ in range(3)]
        run = lambda: backward(torch, plan, [q, k, v, out, d_out], lse, grads, args.choice)  # noqa
        reps = max(args.reps, int(2000 * 540 ** 2 / (h * plan.block_rows ** 2 * 10)))
        start = time.time()
        ours = median_ms(run, 3, reps)
        clocks.window(start, ("ours", frames))
        qg, kg, vg = (x.clone().requires_grad_() for x in (q, k, v))
        with sdpa_kernel([SDPBackend.CUDNN_ATTENTION]):
            o = torch.nn.functional.scaled_dot_product_attention(qg, kg, vg)
        run_cudnn = lambda: torch.autograd.grad(o, (qg, kg, vg), d_out, retain_graph=True)  # noqa
        start = time.time()
        cudnn = median_ms(run_cudnn, 3, reps)
        clocks.window(start, ("cudnn", frames))
        flops = BWD_FACTOR * h * D * s * s
        rows.append((frames, s, plan.block_rows, ours, cudnn, flops))
        print(f"  {frames} frames: ours {ours:.2f} ms, cuDNN {cudnn:.2f} ms", flush=True)
        del q, k, v, d_out, out, lse, grads, qg, kg, vg, o
        torch.cuda.empty_cache()
    mhz = clocks.means()
    print("\n| frames | tokens | L (blocks) | ours ms | ours TFLOP/s | ours MHz | ours FLOP/cycle/SM |"
          " cuDNN ms | cuDNN TFLOP/s | cuDNN MHz | cuDNN FLOP/cycle/SM |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    sms = props.multi_processor_count
    fits = {"ours": [], "cudnn": []}
    for frames, s, blocks, ours, cudnn, flops in rows:
        cells = []
        for key, ms in (("ours", ours), ("cudnn", cudnn)):
            clock = mhz.get((key, frames))
            per_cycle = flops / (ms * 1e-3) / (clock * 1e6) / sms if clock else None
            if per_cycle:
                fits[key].append((1.0 / blocks, 1.0 / per_cycle))
            cells += [f"{ms:.2f}", f"{flops / ms / 1e9:.0f}", f"{clock:.0f}" if clock else "-",
                      f"{per_cycle:.0f}" if per_cycle else "-"]
        print(f"| {frames} | {s:,} | {blocks} | " + " | ".join(cells) + " |")
    for key, points in fits.items():
        if len(points) >= 2:
            a, b = fit(points)
            print(f"{key}: cycles per FLOP = {b:.3e} + {a:.3e} / L: a fixed cost per CTA of "
                  f"{a / b:.1f} blocks of work")
    return 0


if __name__ == "__main__":
    sys.exit(main())
