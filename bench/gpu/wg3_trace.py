#!/usr/bin/env python3
"""Reads the clock stamps of the FP8 three-warpgroup kernel's trace variants (fp8_wg3_trace,
fp8_wg3_ring_trace: Fp8Traits::kTrace in src/cuda/hopper/fwd_fp8_wg3.cuh) and says where a
scheduler's three consumer warps spend a block: per warpgroup the mean clocks of each phase, the
clocks per merged block of the CTA, how many warpgroups are in their softmax at once, and a text
timeline of a few blocks.

usage: wg3_trace.py LOG [--window 6] [--skip 8]
  LOG: the output of profile_case.py with a trace variant ("TRACE cta sm wg block own t0..t5"
  lines, each run's set after the kernel; a "profiled ..." line after each run names it).
  --skip: blocks at the start of the tile left out of the means (the pipeline filling).
"""
import argparse
import re
import statistics
import sys

PHASES = ("wait for S's turn and issue", "S product", "softmax and P", "wait for V, issue P V",
          "P V and the add into O")


def runs(lines):
    """[(label, {wg: [(own, t0..t5)]})] in the log's order."""
    out, cur = [], {}
    for line in lines:
        m = re.match(r"TRACE (\d+) (\d+) (\d) (\d+) (\d) " + " ".join([r"(\d+)"] * 6), line)
        if m:
            wg, own = int(m.group(3)), int(m.group(5))
            cur.setdefault(wg, []).append((own, [int(x) for x in m.groups()[5:]]))
        elif line.startswith("profiled") and cur:
            out.append((line.strip(), cur))
            cur = {}
    if cur:
        out.append(("(unnamed)", cur))
    return out


def unwrap(blocks, origin):
    """Clock stamps relative to origin, the 32-bit counter's wraps undone."""
    return [(own, [(t - origin) % (1 << 32) for t in ts]) for own, ts in blocks]


def report(label, by_wg, window, skip):
    print(f"== {label}")
    origin = min(b[1][0] for blocks in by_wg.values() for b in blocks)
    by_wg = {wg: unwrap(blocks, origin) for wg, blocks in sorted(by_wg.items())}
    n = min(len(b) for b in by_wg.values())
    print(f"merged blocks: {n} (a warpgroup's own: "
          + ", ".join(f"{sum(o for o, _ in b)}" for b in by_wg.values()) + ")")
    for wg, blocks in by_wg.items():
        own = [ts for o, ts in blocks[skip:] if o]
        if not own:
            continue
        means = [statistics.mean(ts[k + 1] - ts[k] for ts in own) for k in range(5)]
        starts = [ts[0] for o, ts in blocks[skip:]]
        step = (starts[-1] - starts[0]) / max(1, len(starts) - 1)
        print(f"wg {wg}: " + ", ".join(f"{p} {m:.0f}" for p, m in zip(PHASES, means))
              + f"; block to block {step:.0f} clocks")
    # Warpgroups in their softmax (t2..t3) at once, and in a product (t1..t2, t4..t5: from the
    # issue to its wait's end), over the span of the blocks after `skip`.
    spans = {wg: [ts for o, ts in b[skip:] if o] for wg, b in by_wg.items()}
    lo = min(ts[0] for s in spans.values() for ts in s)
    hi = max(ts[5] for s in spans.values() for ts in s)
    soft = [0] * 4
    prod = [0] * 4
    events = []
    for wg, s in spans.items():
        for ts in s:
            events += [(ts[2], "s", 1), (ts[3], "s", -1), (ts[1], "p", 1), (ts[2], "p", -1),
                       (ts[4], "p", 1), (ts[5], "p", -1)]
    events.sort()
    ns = npr = 0
    last = lo
    for t, kind, d in events:
        soft[min(ns, 3)] += t - last
        prod[min(npr, 3)] += t - last
        last = t
        if kind == "s":
            ns += d
        else:
            npr += d
    total = max(1, hi - lo)
    print("share of time with 0/1/2/3 warpgroups in softmax: "
          + " / ".join(f"{x / total:.2f}" for x in soft))
    print("share of time with 0/1/2/3 warpgroups waiting on a product: "
          + " / ".join(f"{x / total:.2f}" for x in prod))
    # A timeline of `window` merged blocks after `skip`, 40 clocks a character.
    first = min(b[skip][1][0] for b in by_wg.values() if len(b) > skip)
    last_t = max(b[min(skip + window, len(b) - 1)][1][5] for b in by_wg.values())
    width = (last_t - first) // 40 + 1
    print(f"timeline from clock {first} (40 clocks a character; w wait/issue S, S product,"
          " x softmax, v wait V, P product, . idle)")
    for wg, blocks in by_wg.items():
        row = ["."] * width
        for o, ts in blocks[skip:skip + window + 1]:
            if not o:
                continue
            for k, ch in enumerate("wSxvP"):
                for c in range((ts[k] - first) // 40, (ts[k + 1] - first) // 40):
                    if 0 <= c < width:
                        row[c] = ch
        print(f"wg {wg} " + "".join(row))
    print()


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("log")
    ap.add_argument("--window", type=int, default=6)
    ap.add_argument("--skip", type=int, default=8)
    args = ap.parse_args()
    with open(args.log) as f:
        found = runs(f.readlines())
    if not found:
        print("no TRACE lines", file=sys.stderr)
        return 1
    for label, by_wg in found:
        report(label, by_wg, args.window, args.skip)
    return 0


if __name__ == "__main__":
    sys.exit(main())
