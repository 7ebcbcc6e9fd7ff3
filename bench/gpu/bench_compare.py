#!/usr/bin/env python3
"""The previous commit's library beside this one, on one card in one run: the same cases and
inputs, timed in alternating rounds (old new new old ...), and their outputs compared bit for
bit. Writes one markdown table.

usage: bench_compare.py OLD_SHIM NEW_BUILD_DIR OUT_MD [--old-bench OLD_BENCH_PY]
                        [--old-commit SHA] [--commit SHA] [--rounds 4] [--cases 0,1,2]
                        [--pairs "auto=;0=family=portable"]
  OLD_SHIM      libradial_bench_shim.so of the previous commit (its rb_* ABI, bench/gpu/
                bench_shim.cpp there, which named kernels by integer codes)
  NEW_BUILD_DIR a build of this commit with libradial_c (src/capi/libradial_c.so)
  --old-bench   the previous commit's bench/gpu/bench.py: its CASES must equal this one's
                (checked; they are read from the file, not imported)
  --pairs       which kernels to compare, ";"-separated OLD=NEW: the old library's integer
                ("auto": what attention() ran) and the new choice text ("": what attention()
                runs). Default: attention() on both, and the portable kernel on both.
  --rounds      timed rounds per kernel and library (each the median of 5 runs after 2
                warm-ups; 3 after 1 above 200k tokens), alternating the order every round
The table gives per case and kernel the mean of the rounds' medians for each library, the
run-to-run spread (the largest (max - min) / mean of the rounds of either library), new / old,
and a verdict: "slower" only when new is slower than old by more than that spread.
"""
import argparse
import ast
import ctypes
import datetime
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import BLOCK, CASES, D  # noqa: E402
from radial_shim import Shim, time_calls  # noqa: E402

_OLD_DTYPES = {torch.bfloat16: 1, torch.float16: 2}
_OLD_MODELS = {"wan": 0, "hunyuan": 1}


def _i64(values):
    return (ctypes.c_int64 * len(values))(*values)


class OldShim:
    """The previous commit's rb_* ABI (bench/gpu/bench_shim.cpp at that commit)."""

    def __init__(self, path):
        lib = ctypes.CDLL(path)
        lib.rb_last_error.restype = ctypes.c_char_p
        lib.rb_plan.restype = ctypes.c_void_p
        lib.rb_plan.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64,
                                ctypes.c_int64, ctypes.c_double, ctypes.c_int, ctypes.c_int]
        lib.rb_plan_free.argtypes = [ctypes.c_void_p]
        lib.rb_plan_info.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int64)]
        lib.rb_attention.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_int64)] + \
            [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int64)] * 4 + \
            [ctypes.c_void_p, ctypes.c_double, ctypes.c_int, ctypes.c_void_p]
        self.lib = lib

    def plan(self, model, frames, tokens_per_frame, decay, dense):
        handle = self.lib.rb_plan(_OLD_MODELS[model], frames, tokens_per_frame, 0, -1, decay,
                                  BLOCK, int(dense))
        if not handle:
            raise RuntimeError(self.lib.rb_last_error().decode())
        info = (ctypes.c_int64 * 5)()
        self.lib.rb_plan_info(handle, info)
        return handle, list(info)

    def call(self, plan, q, k, v, out, lse, variant):
        strides = [_i64([t.stride(0), t.stride(1), t.stride(2)]) for t in (q, k, v, out)]
        args = (plan, _OLD_DTYPES[q.dtype], _i64(list(q.shape)), q.data_ptr(), strides[0],
                k.data_ptr(), strides[1], v.data_ptr(), strides[2], out.data_ptr(), strides[3],
                lse.data_ptr() if lse is not None else None, 0.0, variant,
                torch.cuda.current_stream().cuda_stream)
        function, lib = self.lib.rb_attention, self.lib

        def run():
            if function(*args):
                raise RuntimeError(lib.rb_last_error().decode())
        run.keep = strides
        return run


def read_cases(path):
    """CASES of a bench.py, read with ast (importing it would import its own shim)."""
    tree = ast.parse(open(path).read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "CASES"
                                                for t in node.targets):
            return ast.literal_eval(node.value)
    raise ValueError(f"no CASES in {path}")


def parse_pairs(text):
    pairs = []
    for item in (x for x in text.split(";") if x.strip()):
        old, _, new = item.partition("=")
        pairs.append((-1 if old.strip() == "auto" else int(old), new.strip()))
    return pairs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("old_shim")
    ap.add_argument("new_build")
    ap.add_argument("out_md")
    ap.add_argument("--old-bench", default="")
    ap.add_argument("--old-commit", default=os.environ.get("RADIAL_BASE_COMMIT", "previous"))
    ap.add_argument("--commit", default=os.environ.get("RADIAL_COMMIT", "unknown"))
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--cases", default="")
    ap.add_argument("--pairs", default="auto=;0=family=portable")
    args = ap.parse_args()

    if args.old_bench:
        old_cases = read_cases(args.old_bench)
        if [tuple(c) for c in old_cases] != [tuple(c) for c in CASES]:
            print("bench_compare: the old bench.py has other CASES; comparing this one's",
                  file=sys.stderr)
    pairs = parse_pairs(args.pairs)
    case_ids = [int(c) for c in args.cases.split(",") if c] or list(range(len(CASES)))
    torch.manual_seed(int.from_bytes(os.urandom(4), "little"))
    old, new = OldShim(args.old_shim), Shim(args.new_build)
    card = torch.cuda.get_device_name(0)
    rows, started = [], time.time()
    for ci in case_ids:
        name, model, frames, height, width, decay, heads = CASES[ci][:7]
        dense = len(CASES[ci]) > 7 and CASES[ci][7]
        f, t = new.geometry(model, frames, height, width)
        new_plan = new.plan(model, f, t, decay, BLOCK, dense=dense)
        old_plan, info = old.plan(model, f, t, decay, dense)
        assert info[0] == new_plan.seq_len and info[3] == new_plan.kept_blocks, "plans differ"
        S = new_plan.seq_len
        warmup, reps = (1, 3) if S > 200_000 else (2, 5)
        flops = 4.0 * heads * D * new_plan.kept_blocks * BLOCK * BLOCK
        q, k, v = (torch.randn(1, heads, S, D, device="cuda", dtype=torch.bfloat16)
                   for _ in range(3))
        qs, ks, vs = (x.transpose(1, 2) for x in (q, k, v))
        outs = {side: torch.empty_like(q) for side in ("old", "new")}
        lses = {side: torch.empty(1, heads, S, device="cuda", dtype=torch.float32)
                for side in ("old", "new")}
        for variant, choice in pairs:
            runs = {"old": old.call(old_plan, qs, ks, vs, outs["old"].transpose(1, 2),
                                    lses["old"], variant),
                    "new": new.call(new_plan, qs, ks, vs, outs["new"].transpose(1, 2),
                                    lses["new"], 0.0, choice)}
            for side in runs:
                outs[side].fill_(float("nan"))
                lses[side].fill_(float("nan"))
                runs[side]()
            torch.cuda.synchronize()
            same_out = torch.equal(outs["old"], outs["new"])
            same_lse = torch.equal(lses["old"], lses["new"])
            diff = float((outs["old"].float() - outs["new"].float()).abs().max())
            medians = {"old": [], "new": []}
            for rnd in range(args.rounds):
                order = ["old", "new"] if (rnd + len(rows)) % 2 == 0 else ["new", "old"]
                for side in order:
                    ms, _ = time_calls(runs[side], warmup, reps)
                    medians[side].append(ms)
            mean = {s: statistics.mean(m) for s, m in medians.items()}
            spread = max((max(m) - min(m)) / statistics.mean(m) for m in medians.values())
            ratio = mean["new"] / mean["old"]
            verdict = "slower" if ratio - 1 > spread else ("faster" if 1 - ratio > spread
                                                          else "same")
            kernel = new.chosen(new_plan, qs) if not choice else choice
            rows.append(dict(name=name, kernel=kernel, old_variant=variant, flops=flops,
                             mean=mean, medians=medians, spread=spread, ratio=ratio,
                             verdict=verdict, same_out=same_out, same_lse=same_lse, diff=diff))
            print(f"[{time.time() - started:6.1f}s] {name} | {kernel}: old "
                  f"{mean['old']:.2f} ms new {mean['new']:.2f} ms (x{ratio:.3f}, spread "
                  f"{spread:.1%}, {verdict}); outputs {'bit-identical' if same_out else f'differ (max {diff:.2e})'}",
                  flush=True)
        del q, k, v, qs, ks, vs, outs, lses
        old.lib.rb_plan_free(old_plan)
        torch.cuda.empty_cache()

    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"# Previous commit against this one on {card}", "",
        f"Measured {date} by `scripts/gpu/bench_compare` (bench/gpu/bench_compare.py): the "
        f"library of commit {args.old_commit} (its bench shim) beside commit {args.commit} "
        f"(libradial_c, kernels named by choice text), one process, one card, the same "
        f"plans and inputs (bf16, batch 1, head dim {D}, block {BLOCK}, [B, H, S, D] storage "
        f"from torch.randn). Each library timed in {args.rounds} alternating rounds (median of "
        "5 runs after 2 warm-ups, 3 after 1 above 200k tokens, CUDA events around each call "
        "from Python); the table gives the mean of the rounds' medians. Spread: the larger "
        "(max - min) / mean of the two libraries' rounds. Verdict `slower` only where new / old"
        " - 1 exceeds the spread. Outputs: old and new outputs (and log-sum-exp) compared bit "
        "for bit on the same inputs.", "",
        "| case | kernel (new choice; old variant) | old ms (TFLOP/s) | new ms (TFLOP/s) | new / old "
        "| spread | verdict | output | lse |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = [r["name"], f"`{r['kernel']}`; {r['old_variant']}",
                 f"{r['mean']['old']:.2f} ({r['flops'] / r['mean']['old'] / 1e9:.0f})",
                 f"{r['mean']['new']:.2f} ({r['flops'] / r['mean']['new'] / 1e9:.0f})",
                 f"{r['ratio']:.3f}", f"{r['spread']:.1%}", r["verdict"],
                 "identical" if r["same_out"] else f"max diff {r['diff']:.1e}",
                 "identical" if r["same_lse"] else "differs"]
        lines.append("| " + " | ".join(cells) + " |")
    slower = [r for r in rows if r["verdict"] == "slower"]
    lines += ["", f"{len(rows)} comparisons, {len(slower)} slower than the spread"
              + (": " + ", ".join(f"{r['name']} ({r['kernel']})" for r in slower) if slower else "")
              + f"; outputs bit-identical in {sum(r['same_out'] for r in rows)} of {len(rows)}."]
    text = "\n".join(lines) + "\n"
    with open(args.out_md, "w") as fh:
        fh.write(text)
    print()
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
