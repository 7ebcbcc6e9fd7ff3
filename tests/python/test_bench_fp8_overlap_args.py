"""bench/gpu/fp8_overlap.py refuses bad --splits, --cases and --rounds before it does any
work (no library, no GPU): the error names the option, what it takes and what came."""

import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def run(tmp_path, *args):
    return subprocess.run([sys.executable, str(ROOT / "bench/gpu/fp8_overlap.py"), str(tmp_path),
                           *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("value", ["0x2", "2x0", "4", "4x2x1", "ax2", "-1x2", "1x1,"])
def test_refuses_a_bad_split(value, tmp_path):
    out = run(tmp_path, f"--splits={value}")
    assert out.returncode == 2
    assert "argument --splits: expected GROUPSxSTREAMS items (4x2), each at least 1" in out.stderr


@pytest.mark.parametrize("value", ["1x2", "2x" + str(2**31), "4x" + str(2**63)])
def test_refuses_more_streams_than_groups(value, tmp_path):
    out = run(tmp_path, f"--splits={value}")
    assert out.returncode == 2
    assert f"argument --splits: expected at most as many streams as groups, got '{value}'" in \
        out.stderr


@pytest.mark.parametrize("groups", [25, 2**31, 2**63])
def test_refuses_more_groups_than_heads(groups, tmp_path):
    out = run(tmp_path, "--cases=2", f"--splits=1x1,{groups}x2")  # (case 2: Hunyuan, 24 heads)
    assert out.returncode == 2
    assert f"--splits: {groups} groups for case 2's 24 heads" in out.stderr


@pytest.mark.parametrize("value", ["-1", "6", "0,x", "", "1e3", str(2**31), str(2**63)])
def test_refuses_a_case_outside_the_table(value, tmp_path):
    out = run(tmp_path, f"--cases={value}")
    assert out.returncode == 2
    assert "argument --cases: expected indices 0 to 5 of bench.py's cases" in out.stderr


@pytest.mark.parametrize("value", ["0", "101", "-3", str(2**31), str(2**63)])
def test_refuses_rounds_out_of_range(value, tmp_path):
    out = run(tmp_path, f"--rounds={value}")
    assert out.returncode == 2
    assert f"--rounds: expected an integer from 1 to 100, got {value}" in out.stderr
