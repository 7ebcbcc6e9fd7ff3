#!/usr/bin/env python3
"""Where a kernel's warps stall, instruction by instruction, from Nsight Compute's source page.

Reads the CSV of
  ncu -k regex:fwd_hopper --section SourceCounters --section WarpStateStats -o REP ...
  ncu -i REP.ncu-rep --page source --print-source sass --csv > src.csv
(or that CSV compressed by xz) and prints, for each kernel in it: the share of warp-state
samples by stall reason, by opcode within the hot loop (the instructions that share the
execution count holding the most samples: the consumers' main loop) and outside it, and the
instructions with the most samples, each with its top stall reasons.

usage: ncu_source.py SRC_CSV [--top 30] [--kernel SUBSTRING]
"""
import argparse
import collections
import csv
import lzma
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sass_stats import opcode as full_opcode  # noqa: E402

SAMPLES = "Warp Stall Sampling (All Samples)"
EXECUTED = "Instructions Executed"


def number(text):
    return int(text) if text not in ("", "-") else 0


def read_kernels(path):
    """[(kernel name, header, [row dicts])] in file order."""
    kernels, header = [], None
    opener = lzma.open if path.endswith(".xz") else open
    with opener(path, "rt", newline="") as f:
        for row in csv.reader(f):
            if not row:
                continue
            if row[0] == "Kernel Name":
                kernels.append((row[1], None, []))
            elif row[0] == "Address":
                header = row
                kernels[-1] = (kernels[-1][0], header, kernels[-1][2])
            elif kernels and header and len(row) == len(header):
                kernels[-1][2].append(dict(zip(header, row)))
    return kernels


def opcode(source):
    """The opcode without its predicate and modifiers (MUFU.EX2 -> MUFU)."""
    return full_opcode(source.strip()).split(".")[0] or "?"


def report(name, header, rows, top):
    reasons = [h for h in header if h.startswith("stall_") and "Not Issued" not in h]
    total = sum(number(r[SAMPLES]) for r in rows) or 1
    # The hot loop: the execution count that holds the most samples (the most executed
    # instructions are the mbarrier retry loops).
    per_count = collections.Counter()
    for r in rows:
        per_count[number(r[EXECUTED])] += number(r[SAMPLES])
    hot = per_count.most_common(1)[0][0]
    print(f"## {name[:160]}")
    print(f"{len(rows)} instructions, {total} samples; hot loop: the instructions executed "
          f"{hot} times")
    groups = collections.defaultdict(collections.Counter)
    counts = collections.Counter()
    for r in rows:
        key = opcode(r["Source"]) if number(r[EXECUTED]) == hot else "(outside the hot loop)"
        counts[key] += 1
        for reason in reasons:
            groups[key][reason[6:]] += number(r[reason])
    by_reason = sum(groups.values(), collections.Counter())
    print("stall reasons: " + ", ".join(f"{k} {v / total:.1%}" for k, v in
                                          by_reason.most_common(10)))
    print("\n| opcode | instructions | samples | top reasons |\n|---|---|---|---|")
    for key, c in sorted(groups.items(), key=lambda kv: -sum(kv[1].values()))[:24]:
        share = sum(c.values()) / total
        tops = ", ".join(f"{k} {v / total:.1%}" for k, v in c.most_common(3))
        print(f"| {key} | {counts[key]} | {share:.1%} | {tops} |")
    print(f"\ntop {top} instructions (index in the kernel, samples, executed, reasons):")
    order = sorted(range(len(rows)), key=lambda i: -number(rows[i][SAMPLES]))[:top]
    for i in sorted(order):
        r = rows[i]
        tops = sorted(((number(r[x]), x[6:]) for x in reasons), reverse=True)[:2]
        print(f"  {i:5d} {number(r[SAMPLES]) / total:5.1%} {number(r[EXECUTED]):>9} "
              f"{r['Source'].strip()[:64]:64s} "
              + ", ".join(f"{k} {v / total:.1%}" for v, k in tops))
    print()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("csv")
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--kernel", default="", help="only kernels whose name contains this")
    args = ap.parse_args()
    for name, header, rows in read_kernels(args.csv):
        if args.kernel in name and rows:
            report(name, header, rows, args.top)


if __name__ == "__main__":
    main()
