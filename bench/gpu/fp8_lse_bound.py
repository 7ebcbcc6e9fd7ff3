#!/usr/bin/env python3
"""The GPU test's log-sum-exp criterion (tests/gpu/test_cuda_fp8.cpp, Fp8Attention: each row
within kLseAbs + 5 sigma of the float64 lse, sigma the row's e4m3 rounding scale) applied to
fp8_sim.py's float64 simulation of the FP8 forward, on DiT-like dense rows: how close a scheme
comes to that bound, without a GPU. Prints, per seed and head, each scheme's largest and mean lse
error, the rows over the bound and the worst margin (error - 5 sigma - kLseAbs; below 0 passes).

  bench/gpu/fp8_lse_bound.py [--seq 4096] [--seeds 4] [--mean-sample 16] [--lin-below 8]
                             [--schemes s_f16,s_f16_lin8]
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fp8_sim as sim  # noqa: E402

LSE_ABS, LSE_SIGMAS = 0.05, 5.0  # kLseAbs, kLseSigmas


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seq", type=int, default=4096)
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--mean-sample", type=int, default=16,
                    help="smoothing means over the first N tokens of each block (the pass's 16)")
    ap.add_argument("--lin-below", type=float, default=8.0, help="as fp8_sim.py's")
    ap.add_argument("--schemes", default="s_f16,s_f16_lin8")
    args = ap.parse_args()
    sim.check_options(ap, args)
    # (the simulation holds seq x seq float64 matrices: 16384 tokens are 2 GiB each)
    if not (sim.BLOCK <= args.seq <= 16384 and args.seq % sim.BLOCK == 0):
        ap.error(f"--seq: expected a multiple of {sim.BLOCK} tokens from {sim.BLOCK} to 16384, "
                 f"got {args.seq}")
    if not 1 <= args.seeds <= 1000:
        ap.error(f"--seeds: expected 1 to 1000, got {args.seeds}")
    sim.MEAN_SAMPLE, sim.LIN_BELOW = args.mean_sample, args.lin_below  # (the kernel's centre)
    scale = sim.D ** -0.5
    schemes = args.schemes.split(",")
    for seed in range(args.seeds):
        rng = np.random.default_rng(1000 * seed + 1)
        q, k, v = (sim.dit(rng, 2, args.seq, is_v) for is_v in (False, False, True))
        sim.LSE.clear()
        for s in schemes:
            sim.fp8_attention(q, k, v, scale, s)
        for h in range(q.shape[0]):
            z = q[h] @ k[h].T * scale
            top = z.max(1, keepdims=True)
            p = np.exp(z - top)
            total = p.sum(1, keepdims=True)
            p /= total
            # (the kernel's lse leaves out q . mean(K), which the pass adds back per row, and
            # fp8_sim's row sums carry P's 2^8 and the weights' 2^8 less 2^8)
            rows = sim.smoothing_rows(args.seq)
            want = (top + np.log(total))[:, 0] - q[h] @ k[h][rows].mean(0) * scale
            qt, kt = q[h] - q[h].mean(0), k[h] - k[h].mean(0)
            sigma = np.sqrt(2.0 ** -8 / 3 * 2 * scale ** 2 * (qt ** 2 * (p @ kt ** 2)).sum(1))
            for s in schemes:
                err = np.abs(sim.LSE[s][h] + 8 * np.log(2) - want)
                over = int((err > LSE_ABS + LSE_SIGMAS * sigma).sum())
                margin = (err - LSE_SIGMAS * sigma - LSE_ABS).max()
                print(f"seed {seed} head {h} {s}: lse error max {err.max():.3f} mean "
                      f"{err.mean():.4f}; rows over the bound {over}, worst margin {margin:+.3f}",
                      flush=True)


if __name__ == "__main__":
    main()
