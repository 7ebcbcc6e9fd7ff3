"""bench/gpu/fp8_pass_bench.cu, the FP8 quantisation pass's timing tool (run on a lent GPU by
scripts/gpu/steps/fp8-round13), still builds against the pass's sources: built here by its
script with nvcc for sm_90a, then given bad arguments, which it refuses before touching the GPU
(so this runs on a machine without one). Skipped where nvcc is missing."""

import os
import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def find_nvcc():
    found = shutil.which("nvcc")
    if found:
        return found
    default = pathlib.Path("/usr/local/cuda/bin/nvcc")
    return str(default) if default.exists() else None


NVCC = find_nvcc()


@pytest.mark.skipif(NVCC is None, reason="nvcc not found")
def test_fp8_pass_bench_builds_and_refuses_bad_arguments(tmp_path):
    env = dict(os.environ)
    env["PATH"] = str(pathlib.Path(NVCC).parent) + os.pathsep + env.get("PATH", "")
    exe = tmp_path / "fp8_pass_bench"
    built = subprocess.run(["bash", str(ROOT / "bench/gpu/fp8_pass_bench.sh"), str(exe)],
                           env=env, capture_output=True, text=True, timeout=900)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    for args in (["0"], ["1024", "8", "96"], ["1024", "8", "128", "0"]):
        ran = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=60)
        assert ran.returncode == 2, (args, ran.stdout, ran.stderr)
        assert "usage: fp8_pass_bench" in ran.stderr, (args, ran.stderr)
