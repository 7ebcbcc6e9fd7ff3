#!/usr/bin/env python3
"""Static measurements of the Hopper forward kernels, no GPU needed (bench/gpu/HOPPER_NOTES.md,
"The FP8 forward", round 3).

For each instantiation (the FP8 ones and the bf16 reference, head dim 128) it compiles the
.cu file with the build's own flags plus -Xptxas=-v to a cubin, then reports ptxas's
registers and spill bytes, and counts the SASS instructions (cuobjdump -sass) of the
consumers' main loop: the innermost loop that issues both products (two WARPGROUP.ARRIVE),
without its cold paths (the masking of the last block and the mbarrier retry loops: the
code a forward branch inside the loop skips, when it holds no MUFU and no wgmma). It also
counts the exponentials issued between the wait for S (DEPBAR.LE gsb0, 0x1) and the wait for
P V (DEPBAR.LE gsb0, 0x0): the softmax work that really runs under the P V product.

  bench/gpu/sass_stats.py [--build build] [--only SUBSTR ...] [--probe] [--sass-dir DIR]

--probe also compiles a small kernel to show how ex2.approx.f16x2 and the e4m3x2 conversions
come out in SASS. Needs nvcc (PATH or /usr/local/cuda/bin), cuobjdump and nvdisasm (PATH, or
the nvidia-cuda-cuobjdump and nvidia-cuda-nvdisasm pip packages). Each Hopper file takes 30 s
to a few minutes to compile.
"""
import argparse
import collections
import glob
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOPPER = os.path.join(ROOT, "src", "cuda", "hopper")

# Columns of the table: name -> SASS opcode prefixes (the part before the first '.').
CATEGORIES = collections.OrderedDict([
    ("MUFU", ("MUFU",)),
    ("FFMA", ("FFMA",)),
    ("FMUL", ("FMUL",)),
    ("FADD", ("FADD",)),
    ("FMNMX", ("FMNMX",)),
    ("F2FP/F2F", ("F2FP", "F2F", "I2F", "F2I")),
    ("PRMT/LOP3", ("PRMT", "LOP3")),
    ("HADD2/HFMA2", ("HADD2", "HFMA2", "HMUL2")),
    ("SHFL", ("SHFL",)),
    ("LDS", ("LDS",)),
    ("LDG", ("LDG",)),
    ("LDL/STL", ("LDL", "STL")),
    ("wgmma", ("HGMMA", "QGMMA")),
])

LINE = re.compile(r"^\s+/\*([0-9a-f]{4,})\*/\s+(.*?)\s*;?\s*(/\*.*\*/)?\s*$")


def tool(name):
    found = shutil.which(name)
    if found:
        return found
    for candidate in [f"/usr/local/cuda/bin/{name}"]:
        if os.path.exists(candidate):
            return candidate
    try:  # the nvidia-cuda-cuobjdump pip package
        import nvidia  # noqa: F401
        for base in nvidia.__path__:
            for hit in glob.glob(os.path.join(base, "cu*", "bin", name)):
                return hit
    except ImportError:
        pass
    sys.exit(f"sass_stats: {name} not found (PATH, /usr/local/cuda/bin, "
             f"or pip install nvidia-cuda-{'cuobjdump' if name == 'cuobjdump' else name})")


def flags_from_build(build):
    """nvcc flags of the radial_hopper object library (CMake's Makefile generator)."""
    path = os.path.join(build, "src", "CMakeFiles", "radial_hopper.dir", "flags.make")
    if not os.path.exists(path):
        sys.exit(f"sass_stats: {path} missing: configure BUILD with -DRADIAL_HOPPER=ON "
                 "(Makefile generator)")
    values = {}
    for line in open(path):
        m = re.match(r"^(CUDA_\w+) = (.*)$", line.strip())
        if m:
            values[m.group(1)] = m.group(2)
    flags = []
    for key in ("CUDA_DEFINES", "CUDA_INCLUDES", "CUDA_FLAGS"):
        flags += shlex.split(values.get(key, ""))
    # (--options-file paths are relative to BUILD/src, where nvcc runs.)
    drop = {"-Xptxas=-v", "-MD"}
    return [f for f in flags if f not in drop], os.path.join(build, "src")


def compile_cubin(source, flags, cwd, workdir):
    cubin = os.path.join(workdir, os.path.basename(source) + ".cubin")
    cmd = [tool("nvcc")] + flags + ["-Xptxas=-v", "-cubin", "-o", cubin, source]
    run = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"sass_stats: compiling {source} failed:\n{run.stderr[-3000:]}")
    return cubin, run.stderr


def ptxas_info(log):
    """(registers, spill store bytes, spill load bytes) of the fwd_hopper_kernel entry."""
    regs = stores = loads = None
    current = None
    for line in log.splitlines():
        m = re.search(r"Compiling entry function '([^']+)'", line)
        if m:
            current = m.group(1)
            continue
        if current is None or "fwd_hopper_kernel" not in current:
            continue
        m = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", line)
        if m:
            stores, loads = int(m.group(1)), int(m.group(2))
        m = re.search(r"Used (\d+) registers", line)
        if m:
            regs = int(m.group(1))
    return regs, stores, loads


def sass_of(cubin):
    # (cuobjdump -sass runs nvdisasm, which the pip packages keep beside it, not on PATH)
    env = dict(os.environ, NVDISASM_PATH=os.path.dirname(tool("nvdisasm")))
    run = subprocess.run([tool("cuobjdump"), "-sass", cubin], capture_output=True, text=True,
                         env=env)
    if run.returncode != 0:
        sys.exit(f"cuobjdump -sass {cubin} failed:\n{run.stderr}")
    functions, current = {}, None
    for line in run.stdout.splitlines():
        m = re.match(r"^\s+Function : (\S+)", line)
        if m:
            current = m.group(1)
            functions[current] = []
            continue
        m = LINE.match(line)
        if m and current:
            functions[current].append((int(m.group(1), 16), m.group(2).strip()))
    return functions


def opcode(text):
    body = re.sub(r"^@!?U?P\w+\s+", "", text)
    return body.split()[0] if body.split() else ""


def branch_target(text):
    m = re.search(r"\bBRA(?:\.\w+)*\s+(?:\w+,\s*)?0x([0-9a-f]+)", text)
    return int(m.group(1), 16) if m else None


def main_loop(code):
    """(start, end) addresses of the innermost loop holding two WARPGROUP.ARRIVE."""
    best = None
    for addr, text in code:
        target = branch_target(text)
        if target is None or target >= addr:
            continue
        arrives = sum(1 for a, t in code if target <= a <= addr and opcode(t) == "WARPGROUP.ARRIVE")
        if arrives >= 2 and (best is None or addr - target < best[1] - best[0]):
            best = (target, addr)
    return best


def hot(code, start, end):
    """The loop's instructions without the cold ranges (see the module comment)."""
    body = [(a, t) for a, t in code if start <= a <= end]
    cold = set()
    for a, t in body:
        target = branch_target(t)
        if target is None or not (a < target <= end) or not t.startswith("@"):
            continue
        skipped = [(b, u) for b, u in body if a < b < target]
        if any(opcode(u).startswith(("MUFU", "HGMMA", "QGMMA")) for _, u in skipped):
            continue
        cold.update(b for b, _ in skipped)
    return [(a, t) for a, t in body if a not in cold]


def count(instructions):
    counts = collections.OrderedDict((k, 0) for k in CATEGORIES)
    for _, t in instructions:
        op = opcode(t).split(".")[0]
        for name, prefixes in CATEGORIES.items():
            if op in prefixes:
                counts[name] += 1
    counts["total"] = len(instructions)
    # Exponentials between the wait for S and the wait for P V (run under the P V product).
    under, state = 0, None
    for _, t in instructions:
        if "DEPBAR.LE gsb0, 0x1" in t:
            state = "s"
        elif "DEPBAR.LE gsb0, 0x0" in t:
            state = None
        elif state == "s" and opcode(t).startswith("MUFU"):
            under += 1
    counts["MUFU under PV"] = under
    return counts


def probe(workdir):
    """How ex2.approx.f16x2 and the e4m3x2 conversions compile for sm_90a."""
    src = os.path.join(workdir, "probe.cu")
    open(src, "w").write(r"""
#include <cstdint>
__global__ void ex2_f16x2(const uint32_t* in, uint32_t* out) {
  uint32_t e; uint16_t p;
  asm("ex2.approx.f16x2 %0, %1;" : "=r"(e) : "r"(in[threadIdx.x]));
  asm("cvt.rn.satfinite.e4m3x2.f16x2 %0, %1;" : "=h"(p) : "r"(e));
  out[threadIdx.x] = p;
}
__global__ void ex2_f32(const float* in, uint32_t* out) {
  float a, b; uint16_t p;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(a) : "f"(in[2 * threadIdx.x]));
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(b) : "f"(in[2 * threadIdx.x + 1]));
  asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(p) : "f"(b), "f"(a));
  out[threadIdx.x] = p;
}
""")
    cubin = os.path.join(workdir, "probe.cubin")
    subprocess.run([tool("nvcc"), "-gencode=arch=compute_90a,code=sm_90a", "-cubin", "-o", cubin,
                    src], check=True)
    print("## ex2 / e4m3 probe (sm_90a SASS of two exponentials and one e4m3x2 conversion)\n")
    for name, code in sass_of(cubin).items():
        ops = [t for _, t in code if opcode(t).split(".")[0] in ("MUFU", "F2FP", "PRMT", "HADD2")]
        print(f"- {name}: " + "; ".join(ops))
    print()


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    parser.add_argument("--only", nargs="*", default=[],
                        help="substrings of the .cu file names to measure (default: all)")
    parser.add_argument("--probe", action="store_true")
    parser.add_argument("--sass-dir", help="keep each file's SASS here")
    args = parser.parse_args()

    def variant_number(path):  # the library's file first, then v1, v2, ..., v10
        m = re.search(r"_v(\d+)\.cu$", path)
        return int(m.group(1)) if m else 0

    sources = sorted(glob.glob(os.path.join(HOPPER, "fwd_hopper_fp8_bf16_d128*.cu")),
                     key=variant_number)
    sources += [os.path.join(HOPPER, f) for f in ("fwd_hopper_bf16_d128.cu",
                                                  "fwd_hopper_bf16_d128_late_wait.cu")]
    if args.only:
        sources = [s for s in sources if any(o in os.path.basename(s) for o in args.only)]
    flags, cwd = flags_from_build(os.path.abspath(args.build))
    with tempfile.TemporaryDirectory() as workdir:
        if args.probe:
            probe(workdir)
        rows = []
        for source in sources:
            name = os.path.basename(source)[len("fwd_hopper_"):-len(".cu")]
            print(f"compiling {name} ...", file=sys.stderr, flush=True)
            cubin, log = compile_cubin(source, flags, cwd, workdir)
            regs, stores, loads = ptxas_info(log)
            functions = sass_of(cubin)
            kernel = next(f for f in functions if "fwd_hopper_kernel" in f)
            code = functions[kernel]
            if args.sass_dir:
                os.makedirs(args.sass_dir, exist_ok=True)
                with open(os.path.join(args.sass_dir, name + ".sass"), "w") as out:
                    out.writelines(f"/*{a:04x}*/ {t}\n" for a, t in code)
            loop = main_loop(code)
            counts = count(hot(code, *loop)) if loop else {}
            if re.search(r"C75\d\d", log):  # wgmma serialised or other wgmma advice
                print(f"{name}: " + "; ".join(l for l in log.splitlines() if re.search(r"C75\d\d", l)),
                      file=sys.stderr)
            rows.append((name, regs, stores, loads,
                         sum(1 for _, t in code if opcode(t).split(".")[0] in ("LDL", "STL")),
                         counts))
    keys = list(CATEGORIES) + ["total", "MUFU under PV"]
    print("| file | regs | spill st/ld bytes | LDL/STL in kernel | " + " | ".join(keys) + " |")
    print("|---" * (4 + len(keys)) + "|")
    for name, regs, stores, loads, local, counts in rows:
        print(f"| {name} | {regs} | {stores}/{loads} | {local} | " +
              " | ".join(str(counts.get(k, "-")) for k in keys) + " |")


if __name__ == "__main__":
    main()
