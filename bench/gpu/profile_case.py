#!/usr/bin/env python3
"""Runs one benchmark case with one kernel variant twice (a warm-up, then the launch to
profile), for Nsight Compute: ncu -k regex:fwd_kernel --launch-skip 1 -c 1 python3 ... .

usage: profile_case.py BUILD_DIR CASE_INDEX VARIANT [HEADS]
  HEADS overrides the case's head count (kernel replay saves and restores every buffer the
  kernel writes, so fewer heads keep profiling quick; 264 CTAs in flight still share one head).
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import BLOCK, CASES, D  # noqa: E402
from radial_shim import Shim  # noqa: E402


def main():
    build, index, variant = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    shim = Shim(build)
    name, model, frames, height, width, decay, heads = CASES[index]
    if len(sys.argv) > 4:
        heads = int(sys.argv[4])
    f, t = shim.geometry(model, frames, height, width)
    plan = shim.plan(model, f, t, decay, BLOCK)
    q, k, v = (torch.randn(1, plan.seq_len, heads, D, device="cuda", dtype=torch.bfloat16)
               for _ in range(3))
    out = torch.empty_like(q)
    for _ in range(2):
        shim.attention(plan, q, k, v, out, None, 0.0, variant)
    torch.cuda.synchronize()
    print(f"profiled {name}, variant {variant}")


if __name__ == "__main__":
    main()
