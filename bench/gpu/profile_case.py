#!/usr/bin/env python3
"""Runs benchmark cases with chosen kernels, one launch each, for Nsight Compute:
ncu --clock-control none -k regex:fwd_ python3 profile_case.py BUILD_DIR HEADS SPEC...

usage: profile_case.py BUILD_DIR HEADS CASE:CHOICE [CASE:CHOICE ...]
  CHOICE: a name of bench.py's CHOICES (portable, hopper_serial, ...), fields as the library
  reads them ("family=hopper,persistent=on"), or nothing (CASE: what attention() runs).
  HEADS overrides the cases' head counts (0 keeps them): kernel replay saves and restores every
  buffer the kernel writes, so fewer heads keep profiling quick, while the CTAs in flight at
  once still share one head. Inputs are [B, H, S, D] storage, as in bench.py.
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import BLOCK, CASES, D, parse_choices  # noqa: E402
from radial_shim import Shim  # noqa: E402


def main():
    if len(sys.argv) < 4:
        print(__doc__)
        return 2
    shim = Shim(sys.argv[1])
    head_override = int(sys.argv[2])
    for spec in sys.argv[3:]:
        index, _, name_or_fields = spec.partition(":")
        index = int(index)
        choice = next(iter(parse_choices(name_or_fields).values()), "")
        name, model, frames, height, width, decay, heads = CASES[index][:7]
        dense = len(CASES[index]) > 7 and CASES[index][7]
        heads = head_override or heads
        f, t = shim.geometry(model, frames, height, width)
        plan = shim.plan(model, f, t, decay, BLOCK, dense=dense)
        q, k, v = (torch.randn(1, heads, plan.seq_len, D, device="cuda", dtype=torch.bfloat16)
                   for _ in range(3))
        out = torch.empty_like(q)
        shim.attention(plan, *(x.transpose(1, 2) for x in (q, k, v, out)), None, 0.0, choice)
        torch.cuda.synchronize()
        print(f"profiled {name}, {heads} heads, kernel {choice or 'attention()'}", flush=True)
        del q, k, v, out, plan
    return 0


if __name__ == "__main__":
    sys.exit(main())
