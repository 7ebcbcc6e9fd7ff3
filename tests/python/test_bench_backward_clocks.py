"""bench/gpu/bench_backward.py's clock table: the mean SM clock of each backward timing, per
case, '-' where a timing had no sample, and no table at all when nothing was sampled (no
nvidia-smi). Run in a subprocess: the bench scripts put the source tree's python/ first on
sys.path, which must not leak into the other tests (they import the installed package)."""

import json
import pathlib
import subprocess
import sys

BENCH = pathlib.Path(__file__).resolve().parents[2] / "bench/gpu"

SNIPPET = """
import json, sys
sys.path.insert(0, sys.argv[1])
import bench_backward
rows = [dict(name="Wan 69"), dict(name="Hunyuan 509")]
mhz = {("Wan 69", "radial_bwd"): 1712.6, ("Wan 69", "cudnn_bwd"): 1650.2,
       ("Hunyuan 509", "flex_bwd"): 1801.0}
print(json.dumps([bench_backward.render_clocks(rows, mhz),
                  bench_backward.render_clocks([dict(name="Wan 69")], {})]))
"""


def test_clock_table_rounds_means_and_marks_missing_timings():
    run = subprocess.run([sys.executable, "-c", SNIPPET, str(BENCH)], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    lines, empty = json.loads(run.stdout.strip().splitlines()[-1])
    assert "| case | radial bwd | Flex bwd | cuDNN bwd |" in lines
    assert "| Wan 69 | 1713 | - | 1650 |" in lines
    assert "| Hunyuan 509 | - | 1801 | - |" in lines
    assert empty == [], "no clock table without samples"
