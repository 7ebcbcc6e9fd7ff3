#!/usr/bin/env python3
"""One PyTorch SDPA call (cuDNN backend, bf16, [1, HEADS, S, 128]) after a warm-up, for Nsight
Compute beside profile_case.py: ncu --clock-control none -k regex:'(?i)(cudnn|fmha|sm90)'
--launch-skip 1 --launch-count 1 python3 profile_sdpa.py HEADS S
"""
import sys

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel


def main():
    heads, seq = (int(x) for x in sys.argv[1:3])
    q, k, v = (torch.randn(1, heads, seq, 128, device="cuda", dtype=torch.bfloat16)
               for _ in range(3))
    with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
        for _ in range(2):
            torch.nn.functional.scaled_dot_product_attention(q, k, v)
    torch.cuda.synchronize()
    print(f"profiled cuDNN SDPA, {heads} heads, {seq} tokens", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
