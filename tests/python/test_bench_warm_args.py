"""bench/gpu/bench.py refuses a bad --warm-seconds, bench/gpu/fp8_sim.py a bad --mean-sample,
--lin-centre or --lin-below and bench/gpu/fp8_lse_bound.py a bad --mean-sample, --seq, --seeds or
--lin-below, before any does work: the error names the option, what it takes and what came (the
extremes included)."""

import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("value", ["-1", "-1e-9", "nan", "inf", "-inf", "1e999", "abc"])
def test_bench_refuses_bad_warm_seconds(value, tmp_path):
    run = subprocess.run([sys.executable, str(ROOT / "bench/gpu/bench.py"), str(tmp_path),
                          str(tmp_path / "out.md"), f"--warm-seconds={value}"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert "argument --warm-seconds" in run.stderr
    assert not (tmp_path / "out.md").exists()


@pytest.mark.parametrize("value", ["-1", "129", str(2**31), str(2**63)])
def test_fp8_sim_refuses_a_sample_outside_a_block(value):
    run = subprocess.run([sys.executable, str(ROOT / "bench/gpu/fp8_sim.py"),
                          f"--mean-sample={value}"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert f"--mean-sample: expected 0 to 128 tokens a block, got {value}" in run.stderr


@pytest.mark.parametrize("option,value,expected", [
    ("--mean-sample", "-1", "expected 0 to 128 tokens a block"),
    ("--mean-sample", "129", "expected 0 to 128 tokens a block"),
    ("--mean-sample", str(2**63), "expected 0 to 128 tokens a block"),
    ("--seq", "0", "expected a multiple of 128 tokens from 128 to 16384"),
    ("--seq", "200", "expected a multiple of 128 tokens from 128 to 16384"),
    ("--seq", "-128", "expected a multiple of 128 tokens from 128 to 16384"),
    ("--seq", str(2**31), "expected a multiple of 128 tokens from 128 to 16384"),
    ("--seq", str(2**63), "expected a multiple of 128 tokens from 128 to 16384"),
    ("--seeds", "0", "expected 1 to 1000"),
    ("--seeds", "-1", "expected 1 to 1000"),
    ("--seeds", str(2**63), "expected 1 to 1000"),
    ("--lin-below", "-1", "expected 0 to 1e6 exp2 units"),
    ("--lin-below", "nan", "expected 0 to 1e6 exp2 units"),
    ("--lin-below", "inf", "expected 0 to 1e6 exp2 units"),
])
def test_fp8_lse_bound_refuses_bad_options(option, value, expected):
    run = subprocess.run([sys.executable, str(ROOT / "bench/gpu/fp8_lse_bound.py"),
                          f"{option}={value}"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert f"{option}: {expected}, got {value}" in run.stderr


@pytest.mark.parametrize("option,value,expected", [
    ("--lin-centre", "-1.5", "expected -1 to 1"),
    ("--lin-centre", "nan", "expected -1 to 1"),
    ("--lin-centre", "inf", "expected -1 to 1"),
    ("--lin-below", "-1", "expected 0 to 1e6 exp2 units"),
    ("--lin-below", "nan", "expected 0 to 1e6 exp2 units"),
    ("--lin-below", "1e999", "expected 0 to 1e6 exp2 units"),
])
def test_fp8_sim_refuses_bad_lin_options(option, value, expected):
    run = subprocess.run([sys.executable, str(ROOT / "bench/gpu/fp8_sim.py"),
                          f"{option}={value}"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert f"{option}: {expected}, got" in run.stderr
