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


SIM, BOUND = "bench/gpu/fp8_sim.py", "bench/gpu/fp8_lse_bound.py"
BLOCK = "expected 0 to 128 tokens a block"
SEQ = "expected a multiple of 128 tokens from 128 to 16384"
BELOW = "expected 0 to 1e6 exp2 units"


# (whole-number options echo what came as given; float ones as Python prints the float)
@pytest.mark.parametrize("script,option,value,expected", [
    *[(SIM, "--mean-sample", v, BLOCK) for v in ("-1", "129", str(2**31), str(2**63))],
    *[(SIM, "--lin-centre", v, "expected -1 to 1") for v in ("-1.5", "nan", "inf")],
    *[(SIM, "--lin-below", v, BELOW) for v in ("-1", "nan", "1e999")],
    *[(BOUND, "--mean-sample", v, BLOCK) for v in ("-1", "129", str(2**63))],
    *[(BOUND, "--seq", v, SEQ) for v in ("0", "200", "-128", str(2**31), str(2**63))],
    *[(BOUND, "--seeds", v, "expected 1 to 1000") for v in ("0", "-1", str(2**63))],
    *[(BOUND, "--lin-below", v, BELOW) for v in ("-1", "nan", "inf")],
])
def test_fp8_tools_refuse_bad_options(script, option, value, expected):
    run = subprocess.run([sys.executable, str(ROOT / script), f"{option}={value}"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    whole = option in ("--mean-sample", "--seq", "--seeds")
    assert f"{option}: {expected}, got {value if whole else ''}" in run.stderr
