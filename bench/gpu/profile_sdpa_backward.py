#!/usr/bin/env python3
"""Runs cuDNN's dense SDPA backward of a benchmark case once, for Nsight Compute (its launch
shape, registers, shared memory and stall profile beside the library's backward):
ncu --clock-control none -k regex:bprop python3 profile_sdpa_backward.py CASE HEADS

usage: profile_sdpa_backward.py CASE HEADS
  CASE: an index into bench.py's CASES (its tokens; dense attention); HEADS: the head count
  (0 keeps the case's).
"""
import os
import sys

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import BLOCK, CASES, D  # noqa: E402


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    import radial_attention

    index, heads = int(sys.argv[1]), int(sys.argv[2])
    name, model, frames, height, width, decay, case_heads = CASES[index][:7]
    heads = heads or case_heads
    plan = radial_attention.plan(video_frames=frames, height=height, width=width, model=model,
                                 decay_factor=decay, block_size=BLOCK)
    q, k, v, d_out = (torch.randn(1, heads, plan.seq_len, D, device="cuda",
                                  dtype=torch.bfloat16) for _ in range(4))
    q, k, v = (x.requires_grad_() for x in (q, k, v))
    with sdpa_kernel([SDPBackend.CUDNN_ATTENTION]):
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v)
    torch.autograd.grad(out, (q, k, v), d_out)
    torch.cuda.synchronize()
    print(f"profiled cuDNN SDPA backward, {name} tokens, {heads} heads", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
