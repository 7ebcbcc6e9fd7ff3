#!/usr/bin/env python3
"""Times the backward pass on one card in one run: this library through the PyTorch op with
autograd (`radial_attention.attention(q, k, v, plan)` then `torch.autograd.grad`), against
FlexAttention (torch.compile'd, the same block mask as full blocks) and PyTorch SDPA dense
(cuDNN and flash backends), on the cases of bench/gpu/bench.py (the five of issue 3 and a dense
plan); bf16, batch 1, head dim 128, block 128, inputs [B, H, S, D] from torch.randn. Two
timings per library: the backward alone (autograd.grad on a kept graph) and forward + backward.
Besides the op's default, the library's backward is also timed through the C ABI in both dQ
modes (float32 atomics and the deterministic second pass), when the library has that entry.
Prints a table and writes it as markdown, naming the card, the date and the commit.

usage: bench_backward.py OUT_MD [--commit SHA] [--quick] [--cases 0,1] [--peers flex,cudnn,flash]
                         [--flash-all] [--c-abi-all] [--choices 'A;B'] [--choices-only]
                         [--rounds N] [--head-dim 64|128]
  --quick      radial only (no peers), fewer repetitions, for tuning runs
  --cases      which cases, in which order (indices into CASES; default all)
  --peers      which peers to time (default all three)
  --flash-all  also time SDPA flash on the cases above 200k tokens (minutes more)
  --c-abi-all  also time the C ABI's two dQ modes on the cases above 200k tokens
  --choices    backward kernel choices (src/api/kernel_choice.hpp text, separated by ';'), each
               timed through the C ABI (radial_attention_backward_with_choice, backward alone)
               on every case, with its gradients' largest relative L2 difference from the
               op's; a second table compares them with the first choice, e.g.
               'family=hopper,direction=backward;family=hopper,direction=backward,variant=bwd_rs_dv'
  --choices-only  time the choices alone (no op, C ABI modes or peers)
  --rounds     time the choices this many times, alternating (A B A B), the table taking the
               mean of the rounds' medians, so that they see the same heating (default 1)
  --head-dim   64 or 128 (default 128, the models')
On the cases above 200k tokens every timing is 1 warm-up + 3 runs, the dense SDPA peers'
1 + 2 (about 10 s a run on an H200), so that the six cases fit two 10-minute device calls.
The radial_attention package must be importable with its library built with CUDA
(scripts/gpu/bench_backward builds libradial_c and sets RADIAL_C_LIBRARY and PYTHONPATH).

Effective TFLOP/s: the forward counts 4 x heads x D x kept blocks x 128^2 (dense: 4 x heads x
D x S^2); the backward 2.5 times that, forward + backward 3.5 times.
"""
import argparse
import ctypes
import datetime
import os
import sys
import time

BWD_FACTOR, FWD_BWD_FACTOR = 2.5, 3.5

# The cases, sizes and timing of the forward bench, so that the two tables line up.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import BLOCK, CASES, D, ClockLog, median_ms, rel_err  # noqa: E402


def flex_block_mask(torch, plan, device="cuda"):
    """The plan's kept blocks as a FlexAttention BlockMask of full blocks (as bench.py)."""
    from torch.nn.attention.flex_attention import BlockMask
    ro, ci = (x.to(torch.int64) for x in plan.csr())
    rows = plan.block_rows
    counts = ro[1:] - ro[:-1]
    row_of = torch.repeat_interleave(torch.arange(rows), counts)
    slot = torch.arange(len(ci)) - ro[:-1][row_of]
    idx = torch.zeros(rows, rows, dtype=torch.int32)
    idx[row_of, slot] = ci.to(torch.int32)
    full_num = counts.to(torch.int32).view(1, 1, rows).to(device)
    full_idx = idx.view(1, 1, rows, rows).to(device)
    partial_num = torch.zeros_like(full_num)
    partial_idx = torch.zeros_like(full_idx)
    kwargs = dict(BLOCK_SIZE=BLOCK, mask_mod=None, seq_lengths=(plan.seq_len, plan.seq_len))
    # The backward needs the transposed (q-block) lists too: let Flex build them.
    return BlockMask.from_kv_blocks(partial_num, partial_idx, full_num, full_idx, **kwargs)


class CBackward:
    """The library's backward through the C ABI (radial_attention_backward), to time both dQ
    modes; None when the library has no such entry."""

    def __init__(self):
        from radial_attention import _lib
        self.lib = _lib.lib()
        self.check = _lib.check
        if not hasattr(self.lib, "radial_attention_backward"):
            raise AttributeError("radial_attention_backward")
        fn = self.lib.radial_attention_backward
        t = ctypes.POINTER(_lib.Tensor)
        fn.restype = ctypes.c_int32
        fn.argtypes = [ctypes.c_void_p, t, t, t, t, t, ctypes.c_void_p, t, t, t, ctypes.c_double,
                       ctypes.c_int32, ctypes.c_int32, ctypes.c_void_p]
        self.fn = fn

    def __call__(self, torch, plan, tensors, lse, grads, deterministic):
        from radial_attention import ops
        views = [ops._view(x, True) for x in tensors + grads]  # bhsd
        stream = torch.cuda.current_stream().cuda_stream
        refs = [ctypes.byref(x) for x in views]
        self.check(self.fn(plan.handle, *refs[:5], ctypes.c_void_p(lse.data_ptr()), *refs[5:],
                           0.0, 0, int(deterministic), stream))


class CBackwardWithChoice:
    """The library's backward with a kernel named by choice text, through the C ABI
    (radial_attention_backward_with_choice)."""

    def __init__(self):
        from radial_attention import _lib
        self.lib = _lib.lib()
        self.check = _lib.check
        if not hasattr(self.lib, "radial_attention_backward_with_choice"):
            raise AttributeError("radial_attention_backward_with_choice")
        self.fn = self.lib.radial_attention_backward_with_choice

    def __call__(self, torch, plan, tensors, lse, grads, choice):
        from radial_attention import ops
        views = [ops._view(x, True) for x in tensors + grads]  # bhsd
        stream = torch.cuda.current_stream().cuda_stream
        refs = [ctypes.byref(x) for x in views]
        self.check(self.fn(plan.handle, *refs[:5], ctypes.c_void_p(lse.data_ptr()), *refs[5:],
                           0.0, 0, stream, choice.encode()))


def cell(ms, flops, mark=""):
    return f"{ms:.1f} ({flops / ms / 1e9:.0f}){mark}" if ms else "-"


TIMED = [  # (row key, column title, FLOP factor, dense)
    ("radial_bwd", "radial bwd", BWD_FACTOR, False),
    ("radial_bwd_atomic", "radial bwd, dQ atomics (C ABI)", BWD_FACTOR, False),
    ("radial_bwd_det", "radial bwd, deterministic (C ABI)", BWD_FACTOR, False),
    ("flex_bwd", "Flex bwd", BWD_FACTOR, False),
    ("cudnn_bwd", "cuDNN bwd", BWD_FACTOR, True),
    ("flash_bwd", "flash bwd", BWD_FACTOR, True),
    ("radial_fb", "radial fwd+bwd", FWD_BWD_FACTOR, False),
    ("flex_fb", "Flex fwd+bwd", FWD_BWD_FACTOR, False),
    ("cudnn_fb", "cuDNN fwd+bwd", FWD_BWD_FACTOR, True),
    ("flash_fb", "flash fwd+bwd", FWD_BWD_FACTOR, True),
]


def render_clocks(rows, mhz):
    """Mean SM clock of each backward timing, per case (nvidia-smi, 100 ms samples): under the
    power cap the clock differs by kernel and case, which per-FLOP ratios include."""
    keys = [("radial_bwd", "radial bwd"), ("flex_bwd", "Flex bwd"), ("cudnn_bwd", "cuDNN bwd")]
    if not any((r["name"], k) in mhz for r in rows for k, _ in keys):
        return []
    lines = ["", "Mean SM clock (MHz) during each backward timing (nvidia-smi, 100 ms samples;"
             " the card runs at its power cap, so the clock depends on the kernel and the"
             " case):",
             "", "| case | " + " | ".join(t for _, t in keys) + " |",
             "|---" * (1 + len(keys)) + "|"]
    for r in rows:
        cells = [f"{mhz[(r['name'], k)]:.0f}" if (r["name"], k) in mhz else "-" for k, _ in keys]
        lines.append(f"| {r['name']} | " + " | ".join(cells) + " |")
    return lines


def render(args, torch, card, props, rows, mhz=None):
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"# Backward attention on {card}",
        "",
        f"Measured {date}, commit {args.commit}, by `scripts/gpu/bench_backward`"
        f" (bench/gpu/bench_backward.py): {card}, {props.multi_processor_count} SMs, PyTorch"
        f" {torch.__version__}, CUDA {torch.version.cuda}. bf16, batch 1, head dim {D}, block"
        f" {BLOCK}, inputs [B, H, S, D] from torch.randn; median of the timed runs (see the"
        " script) after warm-ups, CUDA events.",
        "",
        "ms (effective TFLOP/s). The forward counts 4 x heads x D x kept blocks x 128^2 FLOPs"
        " (dense: 4 x heads x D x S^2); the backward 2.5 times that, forward + backward 3.5"
        " times. `radial bwd` / `radial fwd+bwd`: radial_attention.attention under autograd"
        " (torch.autograd.grad), the op's default mode; the C ABI columns call"
        " radial_attention_backward directly, dQ by float32 atomics and deterministic (a"
        " second pass over the plan's rows). FlexAttention gets the same block mask as full"
        " blocks, compiled. `bwd vs cuDNN per FLOP`: radial bwd TFLOP/s over cuDNN's dense"
        " bwd TFLOP/s (target >= 0.9); `Flex / radial fwd+bwd`: time ratio (target >= 1.3)."
        " err vs flex: largest relative L2 difference of dQ, dK, dV against Flex's (same"
        " mask: rounding only).",
        "",
        "| case | tokens | heads | density | " + " | ".join(t for _, t, _, _ in TIMED)
        + " | bwd vs cuDNN per FLOP | Flex / radial fwd+bwd | err vs flex |",
        "|---" * (4 + len(TIMED) + 3) + "|",
    ]
    for r in rows:
        cells = [r["name"], f"{r['S']:,}", str(r["heads"]), f"{r['density']:.3f}"]
        for key, _, factor, dense in TIMED:
            flops = factor * (r["dense_flops"] if dense else r["flops"])
            cells.append(cell(r.get(key), flops))
        if "radial_bwd" in r and "cudnn_bwd" in r:
            ours = BWD_FACTOR * r["flops"] / r["radial_bwd"]
            theirs = BWD_FACTOR * r["dense_flops"] / r["cudnn_bwd"]
            cells.append(f"{ours / theirs:.2f}")
        else:
            cells.append("-")
        cells.append(f"{r['flex_fb'] / r['radial_fb']:.2f}x" if "flex_fb" in r else "-")
        cells.append(f"{r['err_flex']:.1e}" if "err_flex" in r else "-")
        lines.append("| " + " | ".join(cells) + " |")
    lines += render_clocks(rows, mhz or {})
    if args.choices:
        lines += render_choices(args, rows)
    return "\n".join(lines) + "\n"


def render_choices(args, rows):
    """The kernel choices' table: backward alone through the C ABI, against the first."""
    lines = [
        "",
        f"Kernel choices (`--choices`, {args.rounds} round(s) alternating, the mean of the"
        " rounds' medians): the backward alone through radial_attention_backward_with_choice"
        " (dQ by float32 adds). `vs first`: time of the first choice over this one (> 1:"
        " faster); `vs cuDNN per FLOP`: TFLOP/s over cuDNN's dense bwd in the same run, where"
        " timed; `err vs op`: largest relative L2 difference of dQ, dK, dV from the op's"
        " gradients (the library's kernel: rounding and dQ's add order only; with"
        " --choices-only, from the first choice's).",
        "",
        "| case | choice | bwd ms (TFLOP/s) | vs first | vs cuDNN per FLOP | err vs op |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        first = None
        for choice in args.choices:
            ms = r.get("choice_ms", {}).get(choice)
            if ms is None:
                continue
            first = first or ms
            flops = BWD_FACTOR * r["flops"]
            per_flop = "-"
            if "cudnn_bwd" in r:
                per_flop = f"{(flops / ms) / (BWD_FACTOR * r['dense_flops'] / r['cudnn_bwd']):.2f}"
            err = r.get("choice_err", {}).get(choice)
            lines.append(f"| {r['name']} | `{choice}` | {cell(ms, flops)} | {first / ms:.3f} | "
                         f"{per_flop} | {'-' if err is None else f'{err:.1e}'} |")
    return lines


def time_choices(torch, radial_attention, c_choice, args, plan, q, k, v, d_out, ours, row,
                 warmup, reps):
    """Each of args.choices through the C ABI, args.rounds times alternating; their gradients'
    largest relative difference from the op's (`ours`; the first choice's without it)."""
    with torch.no_grad():
        out, lse = radial_attention.attention(q, k, v, plan, layout="bhsd", return_lse=True)
    tensors = [q.detach(), k.detach(), v.detach(), out, d_out]
    times = {c: [] for c in args.choices}
    row["choice_err"] = {}
    reference = list(ours) if ours is not None else None
    for _ in range(args.rounds):
        for choice in args.choices:
            grads = [torch.full_like(q, float("nan")) for _ in range(3)]
            c_choice(torch, plan, tensors, lse, grads, choice)  # also the first warm-up
            if reference is None:
                reference = [g.clone() for g in grads]
            row["choice_err"][choice] = max(row["choice_err"].get(choice, 0.0),
                                            *(rel_err(a, b) for a, b in zip(grads, reference)))
            times[choice].append(median_ms(
                lambda: c_choice(torch, plan, tensors, lse, grads, choice), warmup, reps))
            del grads
    row["choice_ms"] = {c: sum(t) / len(t) for c, t in times.items()}
    del out, lse, tensors, reference


def main():
    global D
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_md")
    ap.add_argument("--commit", default=os.environ.get("RADIAL_COMMIT", "unknown"))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--cases", default="")
    ap.add_argument("--peers", default="flex,cudnn,flash")
    ap.add_argument("--flash-all", action="store_true")
    ap.add_argument("--c-abi-all", action="store_true")
    ap.add_argument("--choices", default="")
    ap.add_argument("--choices-only", action="store_true")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--head-dim", type=int, default=D)
    args = ap.parse_args()
    if args.head_dim not in (64, 128):
        ap.error(f"--head-dim: expected 64 or 128, got {args.head_dim}")
    D = args.head_dim  # the table's header and FLOP counts read it
    args.choices = [c.strip() for c in args.choices.split(";") if c.strip()]
    if not 1 <= args.rounds <= 100:
        ap.error(f"--rounds: expected an integer from 1 to 100, got {args.rounds}")
    if args.choices_only and not args.choices:
        ap.error("--choices-only needs --choices")

    import torch
    import radial_attention

    peers = set() if args.quick or args.choices_only else {x for x in args.peers.split(",") if x}
    c_choice = CBackwardWithChoice() if args.choices else None
    case_ids = [int(c) for c in args.cases.split(",") if c] or list(range(len(CASES)))
    try:
        c_backward = CBackward()
    except (AttributeError, ImportError) as e:
        print(f"bench_backward: no C ABI backward to time directly ({e}); op timings only")
        c_backward = None
    props = torch.cuda.get_device_properties(0)
    card = torch.cuda.get_device_name(0)
    started = time.time()
    torch.manual_seed(int.from_bytes(os.urandom(4), "little"))
    if "flex" in peers:
        from torch.nn.attention.flex_attention import flex_attention
        flex = torch.compile(flex_attention, dynamic=False)
    if peers & {"cudnn", "flash"}:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    sdpa = torch.nn.functional.scaled_dot_product_attention

    rows = []
    clocks = ClockLog()
    for ci in case_ids:
        name, model, frames, height, width, decay, heads = CASES[ci][:7]
        dense_plan = len(CASES[ci]) > 7 and CASES[ci][7]
        t_case = time.time()
        plan = radial_attention.plan(video_frames=frames, height=height, width=width,
                                     model=model, decay_factor=decay, block_size=BLOCK,
                                     pattern="dense" if dense_plan else "radial")
        S = plan.seq_len
        big = S > 200_000
        warmup, reps = (1, 3) if big or args.quick else (2, 5)
        row = dict(name=name, S=S, heads=heads, density=plan.density,
                   flops=4.0 * heads * D * plan.kept_blocks * BLOCK * BLOCK,
                   dense_flops=4.0 * heads * D * S * S)
        q, k, v = (torch.randn(1, heads, S, D, device="cuda", dtype=torch.bfloat16,
                               requires_grad=True) for _ in range(3))
        d_out = torch.randn(1, heads, S, D, device="cuda", dtype=torch.bfloat16)

        def radial_fwd():
            return radial_attention.attention(q, k, v, plan, layout="bhsd")

        def timed(key, fwd, warmup=warmup, reps=reps):
            """Backward alone (a kept graph) and forward + backward of `fwd`."""
            out = fwd()
            t0 = time.time()
            row[key + "_bwd"] = median_ms(
                lambda: torch.autograd.grad(out, (q, k, v), d_out, retain_graph=True),
                warmup, reps)
            clocks.window(t0, (name, key + "_bwd"))
            grads = torch.autograd.grad(out, (q, k, v), d_out)
            del out
            row[key + "_fb"] = median_ms(
                lambda: torch.autograd.grad(fwd(), (q, k, v), d_out), warmup, reps)
            return grads

        ours = None if args.choices_only else timed("radial", radial_fwd)
        if c_choice is not None:
            time_choices(torch, radial_attention, c_choice, args, plan, q, k, v, d_out, ours,
                         row, warmup, reps)
        if args.choices_only:
            pass
        elif c_backward is not None and (not big or args.c_abi_all):
            with torch.no_grad():
                out, lse = radial_attention.attention(q, k, v, plan, layout="bhsd",
                                                      return_lse=True)
            grads = [torch.empty_like(q) for _ in range(3)]
            tensors = [q.detach(), k.detach(), v.detach(), out, d_out]
            for key, det in (("radial_bwd_atomic", False), ("radial_bwd_det", True)):
                row[key] = median_ms(
                    lambda: c_backward(torch, plan, tensors, lse, grads, det), warmup, reps)
            del out, lse, grads, tensors
        if "flex" in peers and ours is not None:
            bm = flex_block_mask(torch, plan)
            theirs = timed("flex", lambda: flex(q, k, v, block_mask=bm))
            row["err_flex"] = max(rel_err(a, b) for a, b in zip(ours, theirs))
            del theirs, bm
        dense_timing = (1, 2) if big else (warmup, reps)
        if "cudnn" in peers:
            with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
                timed("cudnn", lambda: sdpa(q, k, v), *dense_timing)
        if "flash" in peers and (not big or args.flash_all):
            with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                timed("flash", lambda: sdpa(q, k, v), *dense_timing)
        rows.append(row)
        print(f"[{time.time() - started:6.1f}s] {name}: S={S} density={plan.density:.3f} "
              + " ".join(f"{key}={row[key]:.2f}ms" for key, _, _, _ in TIMED if key in row)
              + "".join(f" [{c}]={ms:.2f}ms" for c, ms in row.get("choice_ms", {}).items())
              + f"  case {time.time() - t_case:.0f}s", flush=True)
        del q, k, v, d_out, ours
        torch.cuda.empty_cache()
        with open(args.out_md, "w") as fh:  # so far, in case the run is cut short
            fh.write(render(args, torch, card, props, rows))

    text = render(args, torch, card, props, rows, clocks.means())
    with open(args.out_md, "w") as fh:
        fh.write(text)
    print()
    print(text)
    print(f"bench_backward: {len(rows)} cases in {time.time() - started:.0f}s, written to "
          f"{args.out_md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
