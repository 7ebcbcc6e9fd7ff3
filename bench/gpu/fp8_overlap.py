#!/usr/bin/env python3
"""Does the FP8 call gain when the quantisation pass of some heads runs beside the attention
kernel of others? The pass is bound by DRAM, the kernel by the tensor cores and the power cap,
so the pass of head group i + 1 may hide under the kernel of group i. This splits the heads into
N groups and runs one library call per group, the groups alternating over S streams (forked
from the timing stream and joined again), against one call for all heads and the bf16 kernel,
in alternating rounds; each split's output is checked bit-equal to the one call's.

usage: fp8_overlap.py BUILD_DIR [--cases 0,1,2] [--splits 1x1,2x2,4x2,8x2] [--rounds 2]
"""
import argparse
import os
import statistics
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import BLOCK, CASES, D, case_plan  # noqa: E402
from radial_shim import Shim, time_calls  # noqa: E402

FP8 = "family=hopper,precision=fp8"
BF16 = "family=hopper"


def splits_arg(text):
    """'1x1,4x2' -> [(groups, streams), ...], each at least 1, no more streams than groups."""
    out = []
    for item in text.split(","):
        try:
            g, s = (int(x) for x in item.split("x"))
        except ValueError:
            g = s = 0
        if g < 1 or s < 1:
            raise argparse.ArgumentTypeError(
                f"expected GROUPSxSTREAMS items (4x2), each at least 1, got {item!r}")
        if s > g:  # (a stream without a group would only be forked and joined)
            raise argparse.ArgumentTypeError(
                f"expected at most as many streams as groups, got {item!r}")
        out.append((g, s))
    return out


def cases_arg(text):
    """'0,2' -> [0, 2], indices of bench.py's CASES."""
    try:
        cases = [int(x) for x in text.split(",")]
    except ValueError:
        cases = [-1]
    if not all(0 <= c < len(CASES) for c in cases):
        raise argparse.ArgumentTypeError(
            f"expected indices 0 to {len(CASES) - 1} of bench.py's cases, got {text!r}")
    return cases


def grouped_run(shim, plan, q, k, v, out, groups, nstreams, choice):
    """A function that runs the call for `groups` head groups over `nstreams` streams."""
    heads = q.shape[2]
    bounds = [heads * i // groups for i in range(groups + 1)]
    main = torch.cuda.current_stream()
    streams = [main] if nstreams == 1 else [torch.cuda.Stream() for _ in range(nstreams)]
    calls = []
    for i in range(groups):
        h = slice(bounds[i], bounds[i + 1])
        with torch.cuda.stream(streams[i % nstreams]):
            calls.append(shim.call(plan, q[:, :, h], k[:, :, h], v[:, :, h], out[:, :, h],
                                   None, 0.0, choice))

    def run():
        if nstreams > 1:
            fork = torch.cuda.Event()
            fork.record(main)
            for s in streams:
                s.wait_event(fork)
        for c in calls:
            c()
        if nstreams > 1:
            for s in streams:
                done = torch.cuda.Event()
                done.record(s)
                main.wait_event(done)
    return run


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--cases", default="0,1,2", type=cases_arg)
    ap.add_argument("--splits", default="1x1,2x2,4x2,8x2", type=splits_arg)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    if not 1 <= args.rounds <= 100:
        ap.error(f"--rounds: expected an integer from 1 to 100, got {args.rounds}")
    for ci in args.cases:
        heads = CASES[ci][6]
        for g, _ in args.splits:
            if g > heads:
                ap.error(f"--splits: {g} groups for case {ci}'s {heads} heads (at most one "
                         "group a head)")
    shim = Shim(args.build)
    print(f"{torch.cuda.get_device_name(0)}; bf16 inputs, head dim {D}, block {BLOCK}")
    for ci in args.cases:
        name, heads = CASES[ci][0], CASES[ci][6]
        plan = case_plan(shim, ci)
        q, k, v = (torch.randn(1, plan.seq_len, heads, D, device="cuda", dtype=torch.bfloat16)
                   for _ in range(3))
        kinds = [("bf16", 1, 1, BF16)] + [(f"fp8 {g}x{s}", g, s, FP8) for g, s in args.splits]
        outs = {label: torch.full_like(q, float("nan")) for label, *_ in kinds}
        runs = {label: grouped_run(shim, plan, q, k, v, outs[label], g, s, c)
                for label, g, s, c in kinds}
        times = {label: [] for label in runs}
        for rnd in range(args.rounds):
            for label in (list(runs) if rnd % 2 == 0 else list(runs)[::-1]):
                times[label].append(time_calls(runs[label], 2, 5)[0])
        base = statistics.mean(times["bf16"])
        one = statistics.mean(times[kinds[1][0]])
        print(f"{name} (S {plan.seq_len}, {heads} heads)")
        for label in runs:
            ms = statistics.mean(times[label])
            same = "" if label == "bf16" else (
                "  bits = first fp8" if torch.equal(outs[label], outs[kinds[1][0]])
                else "  BITS DIFFER")
            nan = "  NaN!" if torch.isnan(outs[label]).any() else ""
            print(f"  {label:10s} {ms:8.2f} ms  x{base / ms:.3f} vs bf16  x{one / ms:.3f} vs "
                  f"{kinds[1][0]}  rounds {' '.join(f'{x:.2f}' for x in times[label])}{same}{nan}",
                  flush=True)


if __name__ == "__main__":
    main()
