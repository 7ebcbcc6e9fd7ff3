#!/usr/bin/env python3
"""Times, on one card in one run: this library's CUDA kernels (each choice), PyTorch SDPA dense
(cuDNN and flash backends) and FlexAttention (torch.compile'd, the same block mask as full
blocks) on the five cases of issue 3 and a dense plan; bf16, batch 1, head dim 128, inputs [B, H, S, D] from
torch.randn. Prints a table and writes it as markdown.

usage: bench.py BUILD_DIR OUT_MD [--commit SHA] [--quick] [--flash-all]
                [--choices "portable;family=hopper,schedule=serial"]
                [--cases 4,3,2,1,0] [--rounds 2] [--warm-seconds 20] [--peers flex,cudnn,flash]
  --quick      our kernel only (no peers), for tuning runs
  --peers      which peers to time (default all three); without cudnn the dense output for
               the error column is still computed once, untimed
  --keep-peers OLD_MD: for peers not timed, the times of an earlier table (marked, and said so)
  --flash-all  also time SDPA flash on the two largest cases (about a minute more)
  --choices    kernel choices to time besides what radial::attention() runs (the `radial`
               column), separated by ";": each a name of CHOICES (e.g. portable, hopper_serial)
               or fields as the library reads them ("family=portable,row_order=natural";
               docs/dispatch.md); each is also checked against that one's output (rel. error
               printed). The comparison-only kernels need a build with RADIAL_ABLATION_KERNELS=ON
               (scripts/gpu/bench builds one)
  --cases      which cases, in which order (indices into CASES; default all, in table order).
               The card slows as it heats up over a run, so order matters when comparing cases
  --rounds     time the kernel choices this many times, alternating (A B A B); the table gets
               the mean of the rounds' medians, so that choices see the same heating
  --warm-seconds  run the first case's `radial` call this long before timing anything, so that
               the first case is timed on a card as warm as the later ones (a cold card gives
               whatever runs first a higher clock)
Each kernel timing prints its start and end (Unix time); nvidia-smi samples the SM clock every
100 ms meanwhile, and the table gets the mean clock of each timing: on an H100 these kernels
run at the 700 W power cap, so the clock (set by temperature and by the power each kernel
draws) moves TFLOP/s as much as the code does.
"""
import argparse
import datetime
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from radial_shim import Shim  # noqa: E402

# name, model, video frames, height, width, decay, heads[, dense plan]
CASES = [
    ("Wan2.1-14B, 69 frames 768x1280, decay 0.2", "wan", 69, 768, 1280, 0.2, 40),
    ("Wan2.1-14B, 161 frames 768x1280, decay 1.0", "wan", 161, 768, 1280, 1.0, 40),
    ("HunyuanVideo, 117 frames 768x1280, decay 0.95", "hunyuan", 117, 768, 1280, 0.95, 24),
    ("Wan2.1-14B, 321 frames 768x1280, decay 1.0", "wan", 321, 768, 1280, 1.0, 40),
    ("HunyuanVideo, 509 frames 720x1280, decay 0.95", "hunyuan", 509, 720, 1280, 0.95, 24),
    # The dense plan (every block kept), against dense SDPA on the same tokens.
    ("Wan2.1-14B, 69 frames 768x1280, dense plan", "wan", 69, 768, 1280, 1.0, 40, True),
]
# Named kernel choices (the fields: src/api/kernel_choice.hpp, docs/dispatch.md), with the
# column titles of the table. "" is what radial::attention() runs on the card (the Hopper kernel
# on H100/H200 when built in, else the portable kernel).
CHOICES = {
    "portable": ("family=portable", "radial portable (mma.sync)"),
    "eight_warps": ("family=portable,tile=eight_warps", "radial 8 warps"),
    "double_buffer": ("family=portable,tile=double_buffer", "radial double-buffered"),
    "natural_order": ("family=portable,row_order=natural", "radial natural order"),
    "locality": ("family=portable,row_order=locality", "radial locality order"),
    "prefetch": ("family=portable,row_order=heavy_first,l2_prefetch=on", "radial L2 prefetch"),
    "locality_prefetch": ("family=portable,l2_prefetch=on",
                          "radial locality order + L2 prefetch"),
    "heavy_first": ("family=portable,row_order=heavy_first", "radial heavy-first order"),
    "hopper": ("family=hopper", "radial Hopper"),
    "hopper_serial": ("family=hopper,schedule=serial", "radial Hopper serial"),
    "hopper_overlap": ("family=hopper,schedule=overlap", "radial Hopper overlap"),
    "hopper_pingpong": ("family=hopper,schedule=pingpong", "radial Hopper pingpong"),
    "hopper_persistent": ("family=hopper,persistent=on", "radial Hopper, persistent CTAs"),
    "hopper_q_registers": ("family=hopper,schedule=q_registers", "radial Hopper, Q in registers"),
    # The FP8 forward, its quantisation pass included in every timing (precision="fp8").
    "fp8": ("family=hopper,precision=fp8", "radial FP8 (e4m3, quantisation included)"),
    # Comparison builds (RADIAL_ABLATION_KERNELS=ON; bench/gpu/HOPPER_NOTES.md, FP8 round 3).
    "fp8_round3": ("family=hopper,precision=fp8,variant=fp8_round3",
                   "radial FP8, round 3 variant (fma_o, late_wait, prefetch)"),
    "fp8_key_bias": ("family=hopper,precision=fp8,variant=fp8_key_bias",
                     "radial FP8, round 3's kernel (the key bias added to every score)"),
    "fp8_two_warpgroups": ("family=hopper,precision=fp8,variant=fp8_two_warpgroups",
                           "radial FP8, round 6's kernel (two consumer warpgroups)"),
    "bf16_late_wait": ("family=hopper,variant=bf16_late_wait",
                       "radial Hopper, P V wait below the exponentials"),
}


def parse_choices(text):
    """{column name: choice fields} for --choices (names of CHOICES or field strings)."""
    out = {}
    for item in (x.strip() for x in text.split(";")):
        if not item:
            continue
        out[item] = CHOICES[item][0] if item in CHOICES else item
    return out


def case_plan(shim, ci):
    """Case ci's plan (the dense plan where the case asks for it)."""
    _, model, frames, height, width, decay = CASES[ci][:6]
    f, t = shim.geometry(model, frames, height, width)
    return shim.plan(model, f, t, decay, BLOCK, dense=len(CASES[ci]) > 7 and CASES[ci][7])


def seconds_arg(text):
    """--warm-seconds: a finite number of seconds, at least 0."""
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a finite number of seconds >= 0, got {text}")
    return value


def warm_card(shim, ci, seconds):
    """Runs case ci's `radial` call (what radial::attention() runs) for `seconds`."""
    name, heads = CASES[ci][0], CASES[ci][6]
    plan = case_plan(shim, ci)
    q, k, v = (torch.randn(1, plan.seq_len, heads, D, device="cuda", dtype=torch.bfloat16)
               for _ in range(3))
    run = shim.call(plan, q, k, v, torch.empty_like(q), None, 0.0, "")
    end = time.time() + seconds
    calls = 0
    while time.time() < end:
        run()
        torch.cuda.synchronize()
        calls += 1
    print(f"warmed the card: {calls} calls of {name} in {seconds:g} s", flush=True)


def choice_title(name):
    return CHOICES[name][1] if name in CHOICES else f"radial {name}"


D, BLOCK = 128, 128


class ClockLog:
    """nvidia-smi sampling the SM clock every 100 ms into a file; windows (start, end, key) are
    matched against the samples at the end."""

    def __init__(self):
        self.file = tempfile.NamedTemporaryFile("w+", suffix=".csv", delete=False)
        self.windows = []
        try:
            self.proc = subprocess.Popen(
                ["nvidia-smi", "--query-gpu=timestamp,clocks.sm", "--format=csv,noheader",
                 "-lms", "100"], stdout=self.file, stderr=subprocess.DEVNULL)
        except OSError:
            self.proc = None

    def window(self, start, key):
        self.windows.append((start, time.time(), key))

    def means(self):
        """{key: mean SM MHz over its window} (keys without samples are left out)."""
        if self.proc is None:
            return {}
        self.proc.terminate()
        self.proc.wait()
        samples = []
        with open(self.file.name) as fh:
            for line in fh:
                try:
                    stamp, clock = (x.strip() for x in line.split(","))
                    t = datetime.datetime.strptime(stamp, "%Y/%m/%d %H:%M:%S.%f").timestamp()
                    samples.append((t, int(clock.split()[0])))
                except ValueError:
                    continue
        os.unlink(self.file.name)
        out = {}
        for start, end, key in self.windows:
            inside = [c for t, c in samples if start <= t <= end]
            if inside:
                out[key] = statistics.mean(inside)
        return out


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


def cell(ms, flops, mark=""):
    return f"{ms:.1f} ({flops / ms / 1e9:.0f}){mark}" if ms else "-"


PEER_TITLES = {"flex": "Flex ms (TFLOP/s)", "cudnn": "SDPA cuDNN ms (TFLOP/s)",
               "flash": "SDPA flash ms (TFLOP/s)"}


def kept_peer_times(path):
    """{case name: {peer: ms}} read from an earlier table written by this script."""
    out, header = {}, None
    with open(path) as fh:
        for line in fh:
            if line.startswith("Measured "):
                # "Measured <date>, commit <sha>, by ...": keep date and commit.
                out["_source"] = line.split(" by ")[0][len("Measured "):].rstrip(",")
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if cells and cells[0] == "case":
                header = cells
            elif header and len(cells) == len(header) and not cells[0].startswith("---"):
                times = {}
                for key, title in PEER_TITLES.items():
                    if title in header and cells[header.index(title)] != "-":
                        times[key] = float(cells[header.index(title)].split()[0])
                out[cells[0]] = times
            elif header and not line.strip():
                header = None
    return out


def table_row(r, extra):
    ours = r["ours_standard"]

    def mark(key):
        return " *" if key in r.get("kept", ()) else ""

    cells = [r["name"], f"{r['S']:,}", str(r["heads"]), f"{r['density']:.3f}",
             cell(ours, r["flops"])] + [cell(r["ours_" + v], r["flops"]) for v in extra] + [
             cell(r.get("flex"), r["flops"], mark("flex")),
             cell(r.get("cudnn"), r["dense_flops"], mark("cudnn")),
             cell(r.get("flash"), r["dense_flops"], mark("flash"))]
    cells += [f"{r[key] / ours:.2f}x" if key in r else "-" for key in ("flex", "cudnn", "flash")]
    cells.append(f"{r['err_flex']:.1e}" if "err_flex" in r else "-")
    cells.append(f"{r['err_dense']:.2f}" if "err_dense" in r else "-")
    return "| " + " | ".join(cells) + " |"


def render(args, card, props, kernels, extra, rows, mhz, kept_source=""):
    """The markdown table (and the clock table when mhz has readings)."""
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"# Forward attention on {card}",
        "",
        f"Measured {date}, commit {args.commit}, by `scripts/gpu/bench` (bench/gpu/bench.py):"
        f" {card}, {props.multi_processor_count} SMs, PyTorch {torch.__version__}, "
        f"CUDA {torch.version.cuda}. bf16, batch 1, head dim {D}, block {BLOCK}, inputs "
        "[B, H, S, D] from torch.randn; median of 5 timed runs after 2 warm-ups (3 after 1 above "
        "200k tokens), CUDA events"
        + (f"; kernel choices timed in {args.rounds} alternating rounds, mean of the rounds'"
           " medians" if args.rounds > 1 else "")
        + (f"; cases run in the order {args.cases}" if args.cases else "")
        + (f"; the card warmed first by {args.warm_seconds:g} s of the first case's `radial` call"
           if args.warm_seconds > 0 else "") + "."
        + (f" Times marked * were not taken in this run: they come from the earlier table in"
           f" {args.keep_peers} (measured {kept_source}), so ratios against them compare runs"
           " on different machines and card temperatures." if any(r.get("kept") for r in rows)
           else ""),
        "",
        "Effective TFLOP/s = 4 x heads x D x kept blocks x 128^2 / time (sparse); 4 x heads x D x"
        " S^2 / time (dense). `radial` is what radial::attention() runs on this card (on"
        " H100/H200 the Hopper kernel: TMA, wgmma, warp-specialised; elsewhere the"
        " portable mma.sync kernel); other radial columns name a kernel choice (`portable`:"
        " the sm80+ kernel, 4 warps x 32 rows, locality row order). FlexAttention gets the same"
        " block mask as full blocks,"
        " compiled. err vs flex: relative L2 difference of the outputs (same mask: rounding"
        " only); err vs dense: ||radial - dense|| / ||dense||, what the mask changes. On these"
        " random inputs attention is nearly uniform, so the dense output averages all keys and"
        " has a small norm: the figure says nothing about quality on real activations.",
        "",
        "| case | tokens | heads | density | radial ms (TFLOP/s) | "
        + "".join(choice_title(v) + " | " for v in extra)
        + "Flex ms (TFLOP/s) | SDPA cuDNN ms (TFLOP/s) | SDPA flash ms (TFLOP/s) | Flex / radial"
        " | cuDNN / radial | flash / radial | err vs flex | err vs dense |",
        "|---" * (13 + len(extra)) + "|",
    ]

    for r in rows:
        lines.append(table_row(r, extra))
    if mhz:
        names = list(kernels.values()) + ["flex", "cudnn", "flash"]
        titles = ["radial"] + [choice_title(v) for v in extra] + ["Flex", "SDPA cuDNN",
                                                                     "SDPA flash"]
        lines += ["", "Mean SM clock (MHz) during each timing (nvidia-smi, 100 ms samples;"
                  " kernel choices: mean over rounds):", "",
                  "| case | " + " | ".join(titles) + " |", "|---" * (1 + len(titles)) + "|"]
        for r in rows:
            cells = []
            for n in names:
                got = [m for (c, key, _), m in mhz.items() if c == r["case_index"] and key == n]
                cells.append(f"{statistics.mean(got):.0f}" if got else "-")
            lines.append(f"| {r['name']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build_dir")
    ap.add_argument("out_md")
    ap.add_argument("--commit", default=os.environ.get("RADIAL_COMMIT", "unknown"))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--flash-all", action="store_true")
    ap.add_argument("--choices", default="")
    ap.add_argument("--cases", default="")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--warm-seconds", type=seconds_arg, default=0.0)
    ap.add_argument("--peers", default="flex,cudnn,flash")
    ap.add_argument("--keep-peers", default="")
    args = ap.parse_args()
    kept = kept_peer_times(args.keep_peers) if args.keep_peers else {}
    peers = set() if args.quick else {x for x in args.peers.split(",") if x}
    clocks = ClockLog()
    case_ids = [int(c) for c in args.cases.split(",") if c] or list(range(len(CASES)))

    shim = Shim(args.build_dir)
    # {choice fields: column name}; "" is what radial::attention() runs.
    kernels = {"": "standard"}
    kernels.update({fields: name for name, fields in parse_choices(args.choices).items()})
    extra = [name for fields, name in kernels.items() if fields]
    props = torch.cuda.get_device_properties(0)
    card = torch.cuda.get_device_name(0)
    started = time.time()
    torch.manual_seed(int.from_bytes(os.urandom(4), "little"))
    if peers:
        from torch.nn.attention import SDPBackend, sdpa_kernel
        from torch.nn.attention.flex_attention import flex_attention
        flex = torch.compile(flex_attention, dynamic=False)
    if args.warm_seconds > 0:
        warm_card(shim, case_ids[0], args.warm_seconds)
    rows = []
    for ci in case_ids:
        name, heads = CASES[ci][0], CASES[ci][6]
        t_case = time.time()
        plan = case_plan(shim, ci)
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
        medians = {vname: [] for vname in kernels.values()}
        for rnd in range(args.rounds):
            # Alternate the order from round to round and case to case: no choice always
            # runs on the cooler (or hotter) card.
            order = list(kernels.items())
            if (rnd + len(rows)) % 2:
                order.reverse()
            for choice, vname in order:
                t0 = time.time()
                ms, times = shim.time(plan, qs, ks, vs, out.transpose(1, 2), lse, 0.0, choice,
                                      warmup, reps)
                print(f"  timing {name[:28]} {vname} round {rnd}: {t0:.3f}..{time.time():.3f}"
                      f" median {ms:.2f} ms, runs " + " ".join(f"{x:.1f}" for x in times),
                      flush=True)
                medians[vname].append(ms)
                clocks.window(t0, (ci, vname, rnd))
        for vname, ms in medians.items():
            row["ours_" + vname] = statistics.mean(ms)
        shim.attention(plan, qs, ks, vs, out.transpose(1, 2), lse, 0.0, "")  # for the errors
        row["chosen"] = shim.chosen(plan, qs)
        ours = out
        if len(kernels) > 1:
            other = torch.empty_like(out)
            for choice, vname in kernels.items():
                if not choice:
                    continue
                other.fill_(float("nan"))
                shim.attention(plan, qs, ks, vs, other.transpose(1, 2), None, 0.0, choice)
                row["vs_standard_" + vname] = rel_err(other, ours)
            del other
        if "flex" in peers:
            bm = flex_block_mask(plan)
            flex_out = flex(q, k, v, block_mask=bm)
            t0 = time.time()
            row["flex"] = median_ms(lambda: flex(q, k, v, block_mask=bm), warmup, reps)
            clocks.window(t0, (ci, "flex", 0))
            row["err_flex"] = rel_err(ours, flex_out)
            del flex_out, bm
        if peers:
            with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
                dense = torch.nn.functional.scaled_dot_product_attention(q, k, v)
                if "cudnn" in peers:
                    t0 = time.time()
                    row["cudnn"] = median_ms(
                        lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v),
                        warmup, reps)
                    clocks.window(t0, (ci, "cudnn", 0))
            row["err_dense"] = rel_err(ours, dense)
            del dense
            if "flash" in peers and (not big or args.flash_all):
                with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                    t0 = time.time()
                    row["flash"] = median_ms(
                        lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v),
                        warmup, reps)
                    clocks.window(t0, (ci, "flash", 0))
        row["case_index"] = ci
        for key, ms in kept.get(name, {}).items():
            if key not in peers and ms:
                row[key] = ms
                row.setdefault("kept", set()).add(key)
        rows.append(row)
        best = min(row["ours_" + v] for v in kernels.values())
        print(f"[{time.time() - started:6.1f}s] {name}: radial runs {row['chosen']}", flush=True)
        print(f"[{time.time() - started:6.1f}s] {name}: S={S} density={density:.3f} "
              + " ".join(f"{v}={row['ours_' + v]:.2f}ms" for v in kernels.values())
              + f" ({flops / best / 1e9:.0f} TFLOP/s)"
              + "".join(f" {v} vs standard {row['vs_standard_' + v]:.1e}" for v in extra)
              + "".join(f" {key}={row[key]:.2f}ms" for key in ("flex", "cudnn", "flash") if key in row)
              + f"  case {time.time() - t_case:.0f}s", flush=True)
        del q, k, v, qs, ks, vs, out, lse, ours
        torch.cuda.empty_cache()
        with open(args.out_md, "w") as fh:  # so far, in case the run is cut short
            fh.write(render(args, card, props, kernels, extra, rows, {}, kept.get("_source", "")))

    text = render(args, card, props, kernels, extra, rows, clocks.means(), kept.get("_source", ""))
    with open(args.out_md, "w") as fh:
        fh.write(text)
    print()
    print(text)
    print(f"bench: {len(rows)} cases in {time.time() - started:.0f}s, written to {args.out_md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
