#!/usr/bin/env python3
"""Runs the backward of a benchmark case once per named kernel choice, for Nsight Compute:
ncu --clock-control none -k regex:bwd_hopper python3 profile_backward.py CASE HEADS CHOICE...

usage: profile_backward.py CASE HEADS CHOICE [CHOICE ...]
  CASE: an index into bench.py's CASES; HEADS: the head count (0 keeps the case's; few heads
  keep kernel replay quick). CHOICE: kernel choice text, e.g. "family=hopper,direction=backward"
  or "family=hopper,direction=backward,variant=bwd_ss" (needs an ablation build), or "cudnn":
  cuDNN's dense SDPA backward on the case's tokens (its launch shape and stalls beside ours;
  ncu -k regex:bprop).
  The forward (for out and lse) runs first through the op; each choice then runs the backward
  through radial_attention_backward_with_choice (bench_backward.CBackwardWithChoice).
  radial_attention must be importable with a CUDA library (RADIAL_C_LIBRARY).
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import BLOCK, CASES, D  # noqa: E402
from bench_backward import CBackwardWithChoice  # noqa: E402


def cudnn_backward(q, k, v, d_out):
    """cuDNN's dense SDPA forward, then its backward once."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    qg, kg, vg = (x.clone().requires_grad_() for x in (q, k, v))
    with sdpa_kernel([SDPBackend.CUDNN_ATTENTION]):
        o = torch.nn.functional.scaled_dot_product_attention(qg, kg, vg)
    torch.autograd.grad(o, (qg, kg, vg), d_out)


def main():
    if len(sys.argv) < 4:
        print(__doc__)
        return 2
    import radial_attention

    index, heads = int(sys.argv[1]), int(sys.argv[2])
    name, model, frames, height, width, decay, case_heads = CASES[index][:7]
    dense = len(CASES[index]) > 7 and CASES[index][7]
    heads = heads or case_heads
    plan = radial_attention.plan(video_frames=frames, height=height, width=width, model=model,
                                 decay_factor=decay, block_size=BLOCK,
                                 pattern="dense" if dense else "radial")
    q, k, v, d_out = (torch.randn(1, heads, plan.seq_len, D, device="cuda",
                                  dtype=torch.bfloat16) for _ in range(4))
    with torch.no_grad():
        out, lse = radial_attention.attention(q, k, v, plan, layout="bhsd", return_lse=True)
    backward = CBackwardWithChoice()
    for choice in sys.argv[3:]:
        if choice == "cudnn":
            cudnn_backward(q, k, v, d_out)
        else:
            grads = [torch.empty_like(q) for _ in range(3)]
            backward(torch, plan, [q, k, v, out, d_out], lse, grads, choice)
        torch.cuda.synchronize()
        print(f"profiled {name}, {heads} heads, backward {choice}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
