#!/usr/bin/env python3
"""Times the FP8 forward (precision fp8, its quantisation pass included) beside the bf16 Hopper
kernel on bench.py's cases, with the FP8 kernel's comparison variants (the kernel choice's variant field, named as in
src/api/kernel_choice.hpp; a build with RADIAL_ABLATION_KERNELS=ON; fp8_quantize_only is the
quantisation pass alone, whose output is not written; bf16_* are the bf16 kernel's variants,
timed beside it; an item may add choice fields after '+', as standard+persistent=on), in
alternating rounds. Prints ms, effective TFLOP/s, the speed-up over bf16 and the relative error against the
bf16 output (torch.randn inputs). The full table against Flex and cuDNN is bench.py with
--choices fp8.

usage: bench_fp8.py BUILD_DIR [--cases 0,5] [--variants standard,fp8_no_key_bias] [--rounds 2]
"""
import argparse
import os
import statistics
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import BLOCK, CASES, D, rel_err  # noqa: E402
from radial_shim import Shim  # noqa: E402

FP8 = "family=hopper,precision=fp8"
BF16 = "family=hopper"


def kernel(item):
    """(label, choice) of a --variants item: a variant name, optionally with more choice fields
    joined by '+' (standard+persistent=on); bf16 and bf16_* name the bf16 kernel."""
    v, *extra = item.split("+")
    fields = "".join(f",{x}" for x in extra)
    if v == "bf16" or v.startswith("bf16_"):
        base = BF16 + ("" if v == "bf16" else f",variant={v}")
    else:
        base = FP8 + ("" if v == "standard" else f",variant={v}")
    label = ("fp8" if v == "standard" else v) + "".join(f" {x}" for x in extra)
    return label, base + fields


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--cases", default="0,5")
    ap.add_argument("--variants", default="standard",
                    help="comma-separated KernelChoice variants of the FP8 kernel, each "
                    "optionally with more choice fields joined by '+' (standard+persistent=on; "
                    "bf16+persistent=on for the bf16 kernel)")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    if not 1 <= args.rounds <= 100:
        ap.error(f"--rounds: expected an integer from 1 to 100, got {args.rounds}")
    shim = Shim(args.build)
    variants = [x.strip() for x in args.variants.split(",") if x.strip()]
    kernels = [("bf16", BF16)] + [kernel(v) for v in variants]
    print(f"{torch.cuda.get_device_name(0)}; bf16 inputs, head dim {D}, block {BLOCK}")
    for ci in (int(x) for x in args.cases.split(",")):
        name, model, frames, height, width, decay, heads = CASES[ci][:7]
        dense = len(CASES[ci]) > 7 and CASES[ci][7]
        f, t = shim.geometry(model, frames, height, width)
        plan = shim.plan(model, f, t, decay, BLOCK, dense=dense)
        S = plan.seq_len
        flops = 4.0 * heads * D * plan.kept_blocks * BLOCK * BLOCK
        q, k, v = (torch.randn(1, S, heads, D, device="cuda", dtype=torch.bfloat16)
                   for _ in range(3))
        outs = {}
        times = {label: [] for label, _ in kernels}
        for rnd in range(args.rounds):
            order = kernels if rnd % 2 == 0 else kernels[::-1]
            for label, choice in order:
                out = torch.full_like(q, float("nan"))
                ms, _ = shim.time(plan, q, k, v, out, None, 0.0, choice, 1, 5)
                times[label].append(ms)
                outs[label] = out
        base = statistics.mean(times["bf16"])
        print(f"{name} (S {S}, {heads} heads)")
        for label, _ in kernels:
            ms = statistics.mean(times[label])
            err = rel_err(outs[label], outs["bf16"])
            print(f"  {label:26s} {ms:8.2f} ms  {flops / ms * 1e-9:7.1f} TFLOP/s  "
                  f"x{base / ms:.2f} vs bf16  rel. error vs bf16 {err:.2e}  "
                  f"rounds {' '.join(f'{x:.2f}' for x in times[label])}", flush=True)


if __name__ == "__main__":
    main()
