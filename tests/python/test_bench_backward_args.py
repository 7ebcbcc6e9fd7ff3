"""bench/gpu/bench_backward.py refuses a bad --head-dim before it touches the GPU: the error
names the option, what it takes and what came (the extremes included)."""

import pathlib
import subprocess
import sys

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "bench/gpu/bench_backward.py"


@pytest.mark.parametrize("value", ["0", "-1", "32", "256", str(2**31), str(2**63)])
def test_head_dim_outside_64_and_128_is_refused(value, tmp_path):
    run = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "out.md"), "--head-dim",
                          value], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert f"--head-dim: expected 64 or 128, got {value}" in run.stderr
    assert not (tmp_path / "out.md").exists()


def test_head_dim_that_is_not_an_integer_is_refused(tmp_path):
    run = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "out.md"), "--head-dim",
                          "abc"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert "--head-dim: invalid int value: 'abc'" in run.stderr
