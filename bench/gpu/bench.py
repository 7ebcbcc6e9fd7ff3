#!/usr/bin/env python3
"""Times, on one card in one run: this library's CUDA kernel (each variant), PyTorch SDPA dense
(cuDNN and flash backends) and FlexAttention (torch.compile'd, the same block mask as full
blocks) on the five cases of issue 3; bf16, batch 1, head dim 128, inputs [B, H, S, D] from
torch.randn. Prints a table and writes it as markdown.

usage: bench.py BUILD_DIR OUT_MD [--commit SHA] [--quick] [--flash-all]
  --quick      our kernel only (no peers), for tuning runs
  --flash-all  also time SDPA flash on the two largest cases (about a minute more)
  --variants   kernel variants to time besides the standard one, e.g. 2,3 (cuda_detail::FwdVariant)
"""
import argparse
import datetime
import math
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from radial_shim import Shim  # noqa: E402

# name, model, video frames, height, width, decay, heads
CASES = [
    ("Wan2.1-14B, 69 frames 768x1280, decay 0.2", "wan", 69, 768, 1280, 0.2, 40),
    ("Wan2.1-14B, 161 frames 768x1280, decay 1.0", "wan", 161, 768, 1280, 1.0, 40),
    ("HunyuanVideo, 117 frames 768x1280, decay 0.95", "hunyuan", 117, 768, 1280, 0.95, 24),
    ("Wan2.1-14B, 321 frames 768x1280, decay 1.0", "wan", 321, 768, 1280, 1.0, 40),
    ("HunyuanVideo, 509 frames 720x1280, decay 0.95", "hunyuan", 509, 720, 1280, 0.95, 24),
]
VARIANTS = {0: "standard", 1: "eight_warps", 2: "double_buffer", 3: "natural_order"}
VARIANT_TITLES = {"eight_warps": "radial 8 warps", "double_buffer": "radial double-buffered",
                  "natural_order": "radial natural order"}
D, BLOCK = 128, 128


def median_ms(fn, warmup, reps):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    return statistics.median(times)


def rel_err(a, b):
    return float((a.float() - b.float()).norm() / b.float().norm())


def flex_block_mask(plan, device="cuda"):
    from torch.nn.attention.flex_attention import BlockMask
    ro, ci = plan.csr()
    rows = plan.block_rows
    counts = ro[1:] - ro[:-1]
    width = rows  # flex expects one slot per key block column
    row_of = torch.repeat_interleave(torch.arange(rows), counts)
    slot = torch.arange(len(ci)) - ro[:-1][row_of]
    idx = torch.zeros(rows, width, dtype=torch.int32)
    idx[row_of, slot] = ci.to(torch.int32)
    full_num = counts.to(torch.int32).view(1, 1, rows).to(device)
    full_idx = idx.view(1, 1, rows, width).to(device)
    partial_num = torch.zeros_like(full_num)
    partial_idx = torch.zeros_like(full_idx)
    kwargs = dict(BLOCK_SIZE=BLOCK, mask_mod=None, seq_lengths=(plan.seq_len, plan.seq_len))
    try:
        return BlockMask.from_kv_blocks(partial_num, partial_idx, full_num, full_idx,
                                        compute_q_blocks=False, **kwargs)
    except TypeError:
        return BlockMask.from_kv_blocks(partial_num, partial_idx, full_num, full_idx, **kwargs)


def cell(ms, flops):
    return f"{ms:.1f} ({flops / ms / 1e9:.0f})" if ms else "-"


def table_row(r, extra):
    ours = r["ours_standard"]
    cells = [r["name"], f"{r['S']:,}", str(r["heads"]), f"{r['density']:.3f}",
             cell(ours, r["flops"])] + [cell(r["ours_" + v], r["flops"]) for v in extra] + [
             cell(r.get("flex"), r["flops"]), cell(r.get("cudnn"), r["dense_flops"]),
             cell(r.get("flash"), r["dense_flops"])]
    cells += [f"{r[key] / ours:.2f}x" if key in r else "-" for key in ("flex", "cudnn", "flash")]
    cells.append(f"{r['err_flex']:.1e}" if "err_flex" in r else "-")
    cells.append(f"{r['err_dense']:.2f}" if "err_dense" in r else "-")
    return "| " + " | ".join(cells) + " |"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build_dir")
    ap.add_argument("out_md")
    ap.add_argument("--commit", default=os.environ.get("RADIAL_COMMIT", "unknown"))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--flash-all", action="store_true")
    ap.add_argument("--variants", default="")
    args = ap.parse_args()

    shim = Shim(args.build_dir)
    variants = {0: "standard"}
    variants.update({int(v): VARIANTS[int(v)] for v in args.variants.split(",") if v})
    extra = [name for key, name in variants.items() if key != 0]
    props = torch.cuda.get_device_properties(0)
    card = torch.cuda.get_device_name(0)
    started = time.time()
    torch.manual_seed(int.from_bytes(os.urandom(4), "little"))
    if not args.quick:
        from torch.nn.attention import SDPBackend, sdpa_kernel
        from torch.nn.attention.flex_attention import flex_attention
        flex = torch.compile(flex_attention, dynamic=False)
    rows = []
    for ci, (name, model, frames, height, width, decay, heads) in enumerate(CASES):
        t_case = time.time()
        f, t = shim.geometry(model, frames, height, width)
        plan = shim.plan(model, f, t, decay, BLOCK)
        S = plan.seq_len
        big = S > 200_000
        warmup, reps = (1, 3) if big else (2, 5)
        density = plan.kept_blocks / plan.block_rows ** 2
        flops = 4.0 * heads * D * plan.kept_blocks * BLOCK * BLOCK
        dense_flops = 4.0 * heads * D * S * S
        q, k, v = (torch.randn(1, heads, S, D, device="cuda", dtype=torch.bfloat16) for _ in range(3))
        qs, ks, vs = (x.transpose(1, 2) for x in (q, k, v))  # [B, S, H, D] views
        out = torch.empty_like(q)
        lse = torch.empty(1, heads, S, device="cuda", dtype=torch.float32)
        row = dict(name=name, S=S, heads=heads, density=density, flops=flops,
                   dense_flops=dense_flops)
        for variant, vname in variants.items():
            ms, _ = shim.time(plan, qs, ks, vs, out.transpose(1, 2), lse, 0.0, variant, warmup, reps)
            row["ours_" + vname] = ms
        shim.attention(plan, qs, ks, vs, out.transpose(1, 2), lse, 0.0, 0)  # standard, for errors
        ours = out
        if not args.quick:
            bm = flex_block_mask(plan)
            flex_out = flex(q, k, v, block_mask=bm)
            row["flex"] = median_ms(lambda: flex(q, k, v, block_mask=bm), warmup, reps)
            row["err_flex"] = rel_err(ours, flex_out)
            del flex_out, bm
            with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
                dense = torch.nn.functional.scaled_dot_product_attention(q, k, v)
                row["cudnn"] = median_ms(
                    lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v), warmup, reps)
            row["err_dense"] = rel_err(ours, dense)
            del dense
            if not big or args.flash_all:
                with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                    row["flash"] = median_ms(
                        lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v),
                        warmup, reps)
        rows.append(row)
        best = min(row["ours_" + v] for v in variants.values())
        print(f"[{time.time() - started:6.1f}s] {name}: S={S} density={density:.3f} "
              + " ".join(f"{v}={row['ours_' + v]:.2f}ms" for v in variants.values())
              + f" ({flops / best / 1e9:.0f} TFLOP/s)"
              + "".join(f" {key}={row[key]:.2f}ms" for key in ("flex", "cudnn", "flash") if key in row)
              + f"  case {time.time() - t_case:.0f}s", flush=True)
        del q, k, v, qs, ks, vs, out, lse, ours
        torch.cuda.empty_cache()

    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"# Forward attention on {card}",
        "",
        f"Measured {date}, commit {args.commit}, by `scripts/gpu/bench` (bench/gpu/bench.py):"
        f" {card}, {props.multi_processor_count} SMs, PyTorch {torch.__version__}, "
        f"CUDA {torch.version.cuda}. bf16, batch 1, head dim {D}, block {BLOCK}, inputs "
        "[B, H, S, D] from torch.randn; median of 5 timed runs after 2 warm-ups (3 after 1 above "
        "200k tokens), CUDA events.",
        "",
        "Effective TFLOP/s = 4 x heads x D x kept blocks x 128^2 / time (sparse); 4 x heads x D x"
        " S^2 / time (dense). `radial` is this library's portable kernel (mma.sync, sm80+),"
        " standard configuration (4 warps x 32 rows, heavy rows first) unless a column names a"
        " variant; FlexAttention gets the same block mask as full blocks,"
        " compiled. err vs flex: relative L2 difference of the outputs (same mask: rounding"
        " only); err vs dense: ||radial - dense|| / ||dense||, what the mask changes. On these"
        " random inputs attention is nearly uniform, so the dense output averages all keys and"
        " has a small norm: the figure says nothing about quality on real activations.",
        "",
        "| case | tokens | heads | density | radial ms (TFLOP/s) | "
        + "".join(VARIANT_TITLES[v] + " | " for v in extra)
        + "Flex ms (TFLOP/s) | SDPA cuDNN ms (TFLOP/s) | SDPA flash ms (TFLOP/s) | Flex / radial"
        " | cuDNN / radial | flash / radial | err vs flex | err vs dense |",
        "|---" * (14 + len(extra)) + "|",
    ]

    for r in rows:
        lines.append(table_row(r, extra))
    text = "\n".join(lines) + "\n"
    with open(args.out_md, "w") as fh:
        fh.write(text)
    print()
    print(text)
    print(f"bench: {len(rows)} cases in {time.time() - started:.0f}s, written to {args.out_md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
