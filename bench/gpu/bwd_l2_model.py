#!/usr/bin/env python3
"""An LRU model of L2 for the Hopper backward's key-block orders (no GPU needed).

One head; `--ctas` CTAs in flight, each walking its key block's CSC list (the query blocks that
keep it) one entry a step, at a speed drawn from 0.95-1.05 (jitter). Each entry reads Q and dO of
the query block (32 KB each, bf16, head dim 128) and reduce-adds its float32 dQ rows (64 KB: a
miss reads them from HBM, and an evicted dirty block is written back); each CTA reads its K and V
once (64 KB). Prints the hit rate and the HBM bytes per head for each order:

  heavy        heavy_first_columns (src/schedule/row_order.cpp)
  locN         spatial chunks of N blocks over all frames, frame by frame (locality_columns)
  locN+rot     the same with each list rotated to start at frame f - 1 (as the forward's rows)
  rule         locality_columns' own width (about 400 columns a chunk over the frames)
  split        each key block's list cut in two work items: its near part (query blocks of
               frames f - 1 .. f + 1) in natural (frame-major) order, all of them first, then
               its far part in the rule's order, the second adding its dK/dV to the first's
               (128 KB float32 written and read back per key block, counted)

  RADIAL_C_LIBRARY=build-cpu/src/capi/libradial_c.so PYTHONPATH=python \\
      python3 bench/gpu/bwd_l2_model.py --cases 3,4 --chunks 4,8 --l2-mb 50

The bench cases are bench/gpu/bench.py's (indices into its CASES). An optimistic model: the
forward's similar model overstated the measured hit rate by 7-10 points (bench/gpu/NOTES.md).
"""
import argparse
import os
import random
import sys
from collections import OrderedDict

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import CASES  # noqa: E402

from radial_attention.plan import plan_for_video  # noqa: E402

CHUNK_COLUMNS = 400  # kBackwardChunkColumns in src/schedule/row_order.hpp


def orders(off, idx, frames, tokens_per_frame, video_blocks, chunks):
    """Block j's frame and spatial block come from its first token, as in row_order.cpp (a frame
    need not be a whole number of blocks)."""
    n = len(off) - 1
    frame_blocks = -(-tokens_per_frame // 128)

    def frame_of(j):
        return j * 128 // tokens_per_frame

    def first_block_of_frame(f):
        return f * tokens_per_frame // 128

    cnt = off[1:] - off[:-1]
    bucket = np.where(cnt > 0, np.floor(4 * np.log2(np.maximum(cnt, 1))), -1)
    out = {"heavy": (sorted(range(n), key=lambda j: -bucket[j]), None)}
    rule = min(max((CHUNK_COLUMNS + frames // 2) // frames, 1), frame_blocks)
    for name, chunk in [(f"loc{c}", c) for c in chunks] + [(f"rule (loc{rule})", rule)]:
        keys, start = [], [0] * n
        for j in range(n):
            if cnt[j] == 0:
                keys.append((1 << 60, 0, 0, j))
                continue
            if j >= video_blocks:
                keys.append((-1, 0, 0, j))
                continue
            f, s = frame_of(j), (j * 128 % tokens_per_frame) // 128
            keys.append((s // chunk, f, s % chunk, j))
            lst = idx[off[j]:off[j + 1]]
            at = int(np.searchsorted(lst, first_block_of_frame(max(f - 1, 0))))
            start[j] = 0 if at == len(lst) else at
        order = [k[3] for k in sorted(keys, key=lambda k: k[:3])]
        out[name] = (order, None)
        if name.startswith("rule"):
            near, far = [], []
            for j in range(n):
                lst = list(idx[off[j]:off[j + 1]])
                if j >= video_blocks or not lst:
                    near.append((j, lst, False))
                    continue
                f = frame_of(j)
                lo, hi = first_block_of_frame(max(f - 1, 0)), first_block_of_frame(f + 2)
                near.append((j, [i for i in lst if lo <= i < hi], False))
            pos = {j: p for p, j in enumerate(order)}
            for j in sorted(range(n), key=lambda j: pos[j]):
                lst = list(idx[off[j]:off[j + 1]])
                if j >= video_blocks or not lst:
                    continue
                f = frame_of(j)
                lo, hi = first_block_of_frame(max(f - 1, 0)), first_block_of_frame(f + 2)
                rest = [i for i in lst if not lo <= i < hi]
                if rest:
                    far.append((j, rest, True))
            out["split"] = (near + far, "items")
        if not name.startswith("rule"):
            out[name + "+rot"] = (order, start)
    return out


def simulate(order, start, off, idx, capacity, ctas, seed=0):
    rng = random.Random(seed)
    lru = OrderedDict()  # key -> (size, dirty)
    used = miss = total = writeback = 0

    def touch(key, size, dirty):
        nonlocal used, miss, total, writeback
        total += size
        if key in lru:
            s, d = lru.pop(key)
            lru[key] = (s, d or dirty)
            return
        miss += size
        lru[key] = (size, dirty)
        used += size
        while used > capacity:
            _, (s, d) = lru.popitem(last=False)
            used -= s
            writeback += s if d else 0

    queue = iter(order)

    def take():
        j = next(queue, None)
        if j is None:
            return None
        if start == "items":  # (column, rows, adds to a partial dK/dV)
            j, lst, partial = j
            touch(("kv", j), 65536, False)
            touch(("dkv", j), 131072, True)  # written by the near part, read by the far
            return [lst, 0, 0.0, rng.uniform(0.95, 1.05)]
        lst = list(idx[off[j]:off[j + 1]])
        if start is not None and lst:
            lst = lst[start[j]:] + lst[:start[j]]
        touch(("kv", j), 65536, False)
        return [lst, 0, 0.0, rng.uniform(0.95, 1.05)]

    active = [c for c in (take() for _ in range(ctas)) if c]
    while active:
        for c in list(active):
            c[2] += c[3]
            while c[2] >= 1.0 and c[1] < len(c[0]):
                c[2] -= 1.0
                i = c[0][c[1]]
                c[1] += 1
                touch(("q", i), 32768, False)
                touch(("do", i), 32768, False)
                touch(("dq", i), 65536, True)
            if c[1] >= len(c[0]):
                active.remove(c)
                nxt = take()
                if nxt:
                    active.append(nxt)
    return miss, total, writeback


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", default="0,1,2,3,4", help="indices into bench.py's CASES")
    ap.add_argument("--chunks", default="4,8", help="chunk widths in blocks to compare")
    ap.add_argument("--l2-mb", default="50", help="L2 sizes in MB, comma-separated")
    ap.add_argument("--ctas", type=int, default=132, help="CTAs in flight (one per SM)")
    args = ap.parse_args()
    chunks = [int(x) for x in args.chunks.split(",") if x]
    for ci in (int(x) for x in args.cases.split(",")):
        name, model, frames, height, width, decay = CASES[ci][:6]
        p = plan_for_video(model, frames, height, width, decay_factor=decay)
        off, idx = (t.numpy() for t in p.csc())
        latent = (frames - 1) // 4 + 1
        tokens_per_frame = (height // 16) * (width // 16)
        video_blocks = latent * tokens_per_frame // 128
        for mb in (int(x) for x in args.l2_mb.split(",")):
            for oname, (order, start) in orders(off, idx, latent, tokens_per_frame, video_blocks,
                                                chunks).items():
                miss, total, wb = simulate(order, start, off, idx, mb << 20, args.ctas)
                print(f"{name} | L2 {mb} MB | {oname:14s} | hit {100 * (1 - miss / total):5.1f}% "
                      f"| HBM read {miss / 2**30:6.2f} GiB, written back {wb / 2**30:6.2f} GiB",
                      flush=True)


if __name__ == "__main__":
    main()
