"""The GPU steps files (scripts/gpu/steps/, run by scripts/gpu/batch on a lent GPU machine, where
a typo costs a device call) checked here on the CPU: each step line is well formed and under the
10-minute command limit, names scripts that exist, and every kernel choice it names (field
text, bench.py's --choices names, bench_fp8.py's --variants) parses in this library. A CPU
build parses choice text before it refuses CPU tensors, so the error's argument tells the two
apart: "choice" (parsed, refused for CPU tensors) or "choice.<field>" (bad text)."""

import ast
import ctypes
import pathlib
import re

import pytest
import torch

from radial_attention import _lib

ROOT = pathlib.Path(__file__).resolve().parents[2]
STEPS = sorted(p for p in (ROOT / "scripts/gpu/steps").iterdir() if p.name != "README.md")


def bench_choices():
    """bench.py's CHOICES (the names its --choices takes), read from its source: importing it
    would put the source tree's package first on sys.path, which the distributed tests' worker
    processes inherit."""
    tree = ast.parse((ROOT / "bench/gpu/bench.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "CHOICES"
                                                for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError("bench/gpu/bench.py has no CHOICES")


CHOICES = bench_choices()


def bench_fp8_kernel():
    """bench_fp8.py's kernel() (a --variants item to its choice), taken from its source with
    the constants it reads, for the same reason."""
    tree = ast.parse((ROOT / "bench/gpu/bench_fp8.py").read_text())
    keep = [node for node in tree.body
            if (isinstance(node, ast.FunctionDef) and node.name == "kernel")
            or (isinstance(node, ast.Assign)
                and {getattr(t, "id", "") for t in node.targets} & {"FP8", "BF16"})]
    namespace = {}
    exec(compile(ast.Module(body=keep, type_ignores=[]), "bench_fp8.py", "exec"), namespace)
    return namespace["kernel"]


FP8_KERNEL = bench_fp8_kernel()


def steps(path):
    """(name, limit, command) of each step line ('#' lines and blank lines are comments)."""
    out = []
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, limit, command = line.split(None, 2)
        out.append((name, limit, command))
    return out


def refused_argument(choice: str) -> str:
    """The argument radial_attention_with_choice names for `choice` on CPU tensors."""
    lib = _lib.lib()
    geometry = _lib.Geometry(2, 64, 0, -1)
    spec = _lib.PlanSpec(0, 0, 1.0, 64, 0)
    handle = ctypes.c_void_p()
    assert lib.radial_plan_create(ctypes.byref(geometry), ctypes.byref(spec),
                                  ctypes.byref(handle)) == _lib.OK
    try:
        tensors = [torch.randn(1, 128, 2, 16) for _ in range(4)]
        views = [_lib.Tensor(t.data_ptr(), _lib.DTYPE_F32, _lib.DEVICE_CPU, 0, 0, 1, 128, 2, 16,
                             128 * 32, 32, 16) for t in tensors]
        refs = [ctypes.byref(x) for x in views]
        status = lib.radial_attention_with_choice(handle, *refs, None, 0.0, 1, None,
                                                  choice.encode())
        assert status == _lib.INVALID_ARGUMENT
        return lib.radial_last_error_argument().decode()
    finally:
        lib.radial_plan_destroy(handle)


def choices_in(command):
    """Every kernel choice a step names, as field text."""
    found = set(re.findall(r"family=[A-Za-z0-9_=,]+", command))
    for names in re.findall(r"--choices\s+['\"]([^'\"]+)['\"]", command):
        for item in (x.strip() for x in names.split(";") if x.strip()):
            if "=" not in item:
                assert item in CHOICES, f"--choices names {item!r}, not in bench.py's CHOICES"
                found.add(CHOICES[item][0])
    for names in re.findall(r"--variants\s+(\S+)", command):
        for item in names.split(","):
            found.add(FP8_KERNEL(item)[1])
    return found


@pytest.mark.parametrize("path", STEPS, ids=lambda p: p.name)
def test_steps_file_is_well_formed(path):
    lines = steps(path)
    assert lines, f"{path.name}: no steps"
    names = [name for name, _, _ in lines]
    assert len(names) == len(set(names)), f"{path.name}: a step name twice"
    for name, limit, command in lines:
        assert limit.isdigit() and 0 < int(limit) <= 600, f"{name}: limit {limit!r}"
        for script in re.findall(r"(?:bench/gpu/[\w.-]+\.py|scripts/gpu/[\w-]+)", command):
            assert (ROOT / script).exists(), f"{name}: {script} does not exist"


@pytest.mark.parametrize("path", STEPS, ids=lambda p: p.name)
def test_steps_file_choices_parse(path):
    for name, _, command in steps(path):
        for choice in choices_in(command):
            assert refused_argument(choice) == "choice", f"{name}: {choice!r} does not parse"


def test_a_bad_choice_is_told_apart():
    """The check above can fail: a misspelt variant is named by its field."""
    assert refused_argument("family=hopper,precision=fp8,variant=fp8_round4") == "choice.variant"
    assert refused_argument("family=hopper,precision=fp8,variant=fp8_round3") == "choice"


@pytest.mark.parametrize("script", ["bench_backward.py", "bench_fp8.py"])
@pytest.mark.parametrize("rounds", ["0", "-1", str(2**63)])
def test_bench_rounds_out_of_range_is_refused(script, rounds):
    """--rounds < 1 would divide by zero after timing nothing, a huge count would not end; the
    scripts refuse both by name
    (argparse runs before any GPU is touched, so this runs here)."""
    import subprocess
    import sys

    run = subprocess.run([sys.executable, str(ROOT / "bench/gpu" / script), "out", "--rounds",
                          rounds], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert "--rounds" in run.stderr
