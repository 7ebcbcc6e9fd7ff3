#!/usr/bin/env python3
"""Static register and instruction counts of the Hopper backward's kernels, no GPU needed: each
instantiation file (src/cuda/hopper/bwd_hopper*.cu) compiled to a cubin with `-Xptxas -v` (the
flags of src/cuda/hopper/hopper.cmake, RADIAL_ABLATION_KERNELS on), then `cuobjdump -sass`.
Per kernel: registers, spill bytes, barriers, ptxas's wgmma advisories (C7512: wgmma serialised;
C7517/C7518: waits injected), and the SASS counts of its main loop (the loop, found by its
backward branch, that holds the most HGMMA) and of the whole kernel: shared stores and loads,
named barriers, wgmma issues, arrives and waits, proxy fences, mbarrier operations, TMA adds,
exponentials, conversions, local-memory traffic. Prints a markdown table (bench/gpu/HOPPER_NOTES.md
"backward round 3" keeps one). Also builds and runs bench/gpu/bwd_rs_layout.cu (host only): the
register variants' claim that S^T's accumulator entries are their A operand's values, entry for
entry; exits 1 when it finds a mismatch.

usage: sass_bwd.py [FILE.cu ...] [--keep DIR] [--jobs N]
  FILE.cu  instantiation files (default: every src/cuda/hopper/bwd_hopper*.cu)
  --keep   leave the cubins, ptxas logs and SASS in DIR (default: a temporary folder)
  --jobs   parallel nvcc processes (default 1; each takes 20-30 s and a core)
Needs nvcc (PATH or /usr/local/cuda/bin), CuTe (pip install nvidia-cutlass==4.2.0.0) and
cuobjdump with nvdisasm (CUDA toolkit, or pip install nvidia-cuda-cuobjdump
nvidia-cuda-nvdisasm; found on PATH, in $CUDA_HOME/bin, or the pip packages' nvidia/cu*/bin).
"""
import argparse
import collections
import concurrent.futures
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# SASS opcode prefixes counted, in table order (a name matches an opcode equal to it or
# starting with it and a dot).
COUNTED = [
    ("", "instructions"),  # every instruction (counted apart)
    ("HGMMA", "wgmma"),
    ("WARPGROUP.ARRIVE", "wg.arrive"),
    ("WARPGROUP.DEPBAR", "wg.wait"),
    ("STS", "STS"),
    ("LDS", "LDS"),
    ("BAR", "BAR"),
    ("FENCE.VIEW.ASYNC", "fence.async"),
    ("MEMBAR", "MEMBAR"),
    ("SYNCS", "mbarrier"),
    ("UTMAREDG", "TMA add"),
    ("MUFU.EX2", "EX2"),
    ("F2FP", "F2FP"),
    ("STL", "STL"),
    ("LDL", "LDL"),
]

INSTR = re.compile(r"^\s+/\*([0-9a-f]{4,})\*/\s+(?:@!?U?P[T0-9]+\s+)?([A-Z][A-Z0-9_.]*)(.*?);")
FUNC = re.compile(r"^\s+Function : (\S+)")
BRANCH_TARGET = re.compile(r"(0x[0-9a-f]+)\s*$")
# bwd_hopper_kernel<BwdTraits<Element, D, stages>, schedule, operands, warps> (operands absent
# before round 3, warps before round 5).
# bwd_hopper_kernel<BwdTraits<Element, D, stages>, Config<operands, warps, dS store, row loads,
# dQ store, key mask, schedule>>.
KERNEL = re.compile(
    r"BwdTraitsIN7cutlass\d+(bfloat16_t|half_t)ELi(\d+)ELi(\d+)EEENS\d+_6ConfigI"
    r"Li(\d+)ELi(\d+)ELi(\d+)ELi(\d+)ELi(\d+)ELi(\d+)ELi(\d+)E")
OPERANDS = {0: "P^T, dS^T from shared (bwd_ss)", 1: "P^T from registers (bwd_rs_dv)",
            2: "P^T, dS^T from registers",
            3: "dK and next tile early (bwd_early_dk)"}
WARPS = {0: "producer warpgroup", 1: "consumer loads", 2: "producer, dQ writer"}


def find_tool(name):
    found = shutil.which(name)
    if found:
        return found
    candidates = [os.path.join(os.environ.get("CUDA_HOME", "/usr/local/cuda"), "bin", name)]
    for site in sys.path:
        candidates += glob.glob(os.path.join(site, "nvidia", "cu*", "bin", name))
    for c in candidates:
        if os.path.exists(c):
            return c
    sys.exit(f"sass_bwd.py: {name} not found (PATH, $CUDA_HOME/bin, pip nvidia/cu*/bin)")


def cutlass_include():
    import cutlass_library  # noqa: PLC0415 (only needed here)
    return os.path.join(os.path.dirname(cutlass_library.__file__), "source", "include")


def nvcc_flags():
    return ["-DRADIAL_ABLATION_KERNELS=1", "-I", os.path.join(ROOT, "include"), "-I",
            os.path.join(ROOT, "src"), "-isystem", cutlass_include(), "-O3", "-DNDEBUG",
            "-gencode=arch=compute_90a,code=sm_90a", "--expt-relaxed-constexpr", "-std=c++17"]


def layout_check(nvcc, out_dir):
    """Builds and runs bwd_rs_layout.cu; returns (ok, its output)."""
    exe = os.path.join(out_dir, "bwd_rs_layout")
    src = os.path.join(ROOT, "bench", "gpu", "bwd_rs_layout.cu")
    build = subprocess.run([nvcc, *nvcc_flags(), "-o", exe, src], capture_output=True, text=True)
    if build.returncode != 0:
        return False, build.stdout + build.stderr
    run = subprocess.run([exe], capture_output=True, text=True)
    return run.returncode == 0, run.stdout + run.stderr


def compile_cubin(nvcc, cu, out_dir):
    stem = os.path.splitext(os.path.basename(cu))[0]
    cubin = os.path.join(out_dir, stem + ".cubin")
    cmd = [nvcc, *nvcc_flags(), "-lineinfo", "-Xptxas", "-v", "-cubin", "-o", cubin, cu]
    run = subprocess.run(cmd, capture_output=True, text=True)
    log = run.stdout + run.stderr
    with open(os.path.join(out_dir, stem + ".ptxas.txt"), "w") as f:
        f.write(log)
    if run.returncode != 0:
        sys.exit(f"sass_bwd.py: nvcc failed on {cu}:\n{log}")
    return cubin, log


def ptxas_facts(log):
    """Per mangled kernel name: registers, spill stores/loads, barriers, advisories."""
    facts = collections.defaultdict(lambda: {"advice": collections.Counter()})
    current = None
    for line in log.splitlines():
        m = re.search(r"\((C75\d\d)\).*function '([^']+)'", line)
        if m:
            facts[m.group(2)]["advice"][m.group(1)] += 1
            continue
        m = re.search(r"Function properties for (\S+)", line)
        if m:
            current = m.group(1)
            continue
        m = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", line)
        if m and current:
            facts[current]["spills"] = (int(m.group(1)), int(m.group(2)))
            continue
        m = re.search(r"Used (\d+) registers(?:, used (\d+) barriers)?", line)
        if m and current:
            facts[current]["registers"] = int(m.group(1))
            facts[current]["barriers"] = int(m.group(2) or 0)
    return facts


def sass_functions(cuobjdump, cubin):
    """Per function name: its instructions as (address, opcode, operands)."""
    text = subprocess.run([cuobjdump, "-sass", cubin], capture_output=True, text=True,
                          check=True).stdout
    funcs, current = {}, None
    for line in text.splitlines():
        m = FUNC.match(line)
        if m:
            current = funcs.setdefault(m.group(1), [])
            continue
        m = INSTR.match(line)
        if m and current is not None:
            current.append((int(m.group(1), 16), m.group(2), m.group(3)))
    return funcs


def count(instrs):
    c = collections.Counter(instructions=len(instrs))
    for _, op, _ in instrs:
        for prefix, label in COUNTED:
            if prefix and (op == prefix or op.startswith(prefix + ".")):
                c[label] += 1
    return c


def main_loop(instrs):
    """The instructions of the loop (backward branch to an earlier address) with most HGMMA."""
    best, best_n = [], -1
    for addr, op, rest in instrs:
        if not op.startswith("BRA"):
            continue
        m = BRANCH_TARGET.search(rest.strip())
        if not m:
            continue
        target = int(m.group(1), 16)
        if target >= addr:
            continue
        body = [i for i in instrs if target <= i[0] <= addr]
        n = sum(1 for _, o, _ in body if o.startswith("HGMMA"))
        if n > best_n or (n == best_n and len(body) < len(best)):
            best, best_n = body, n
    return best


def label(name):
    m = KERNEL.search(name)
    if not m:
        return None
    dtype = "bf16" if m.group(1) == "bfloat16_t" else "f16"
    operands, warps, ds, rows, dq, mask = (int(m.group(i)) for i in range(4, 10))
    what = OPERANDS.get(operands, f"operands {operands}")
    what += ", " + WARPS.get(warps, f"warps {warps}")
    what += ", dS^T " + ("stmatrix" if ds else "32-bit")
    what += ", lse " + ("16-byte" if rows else "8-byte")
    what += ", dQ " + ("fragments" if dq else "boxes")
    what += ", mask " + ("branch" if mask else "select")
    return f"{dtype} D{m.group(2)}", what


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="*")
    ap.add_argument("--keep")
    ap.add_argument("--jobs", type=int, default=1)
    args = ap.parse_args()
    files = args.files or sorted(glob.glob(os.path.join(ROOT, "src/cuda/hopper/bwd_hopper*.cu")))
    nvcc = find_tool("nvcc")
    cuobjdump = find_tool("cuobjdump")
    # cuobjdump -sass runs nvdisasm, found on PATH only.
    nvdisasm = find_tool("nvdisasm")
    os.environ["PATH"] = os.path.dirname(nvdisasm) + os.pathsep + os.environ["PATH"]
    out_dir = args.keep or tempfile.mkdtemp(prefix="sass_bwd.")
    os.makedirs(out_dir, exist_ok=True)

    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        built = list(pool.map(lambda f: compile_cubin(nvcc, f, out_dir), files))
    rows = []
    for cubin, log in built:
        facts = ptxas_facts(log)
        for name, instrs in sass_functions(cuobjdump, cubin).items():
            what = label(name)
            if what is None:
                continue
            f = facts.get(name, {"advice": collections.Counter()})
            loop, whole = count(main_loop(instrs)), count(instrs)
            rows.append((what, f, loop, whole))
            with open(os.path.join(out_dir, os.path.basename(cubin) + ".sass"), "a") as out:
                out.write(f"// {name}\n")
                out.writelines(f"{a:06x} {o}{r}\n" for a, o, r in instrs)
    rows.sort(key=lambda r: r[0])
    labels = [lbl for _, lbl in COUNTED]
    print("| kernel | A operands of dV, dK | registers | spills (st/ld B) | barriers | "
          "ptxas advice | " + " | ".join(f"loop {x}" for x in labels) + " |")
    print("|" + "---|" * (6 + len(labels)))
    for (kernel, operands), f, loop, _ in rows:
        advice = ", ".join(f"{k} x{v}" for k, v in sorted(f["advice"].items())) or "none"
        spills = f.get("spills", ("?", "?"))
        print(f"| {kernel} | {operands} | {f.get('registers', '?')} | {spills[0]} / {spills[1]} | "
              f"{f.get('barriers', '?')} | {advice} | "
              + " | ".join(str(loop[x]) for x in labels) + " |")
    print()
    print("Whole kernel (main loop + prologue + epilogue):")
    print("| kernel | A operands | " + " | ".join(labels) + " |")
    print("|" + "---|" * (2 + len(labels)))
    for (kernel, operands), _, _, whole in rows:
        print(f"| {kernel} | {operands} | " + " | ".join(str(whole[x]) for x in labels) + " |")
    ok, text = layout_check(nvcc, out_dir)
    print("\nbwd_rs_layout.cu (S^T accumulator entries against the RS A operand's values):")
    print(text.rstrip())
    print(f"\n(cubins, ptxas logs and SASS in {out_dir})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
