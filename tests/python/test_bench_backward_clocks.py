"""bench/gpu/bench_backward.py's clock table: the mean SM clock of each backward timing, per
case, '-' where a timing had no sample, and no table at all when nothing was sampled (no
nvidia-smi)."""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "bench/gpu"))

import bench_backward  # noqa: E402


def test_clock_table_rounds_means_and_marks_missing_timings():
    rows = [dict(name="Wan 69"), dict(name="Hunyuan 509")]
    mhz = {("Wan 69", "radial_bwd"): 1712.6, ("Wan 69", "cudnn_bwd"): 1650.2,
           ("Hunyuan 509", "flex_bwd"): 1801.0}
    lines = bench_backward.render_clocks(rows, mhz)
    assert "| case | radial bwd | Flex bwd | cuDNN bwd |" in lines
    assert "| Wan 69 | 1713 | - | 1650 |" in lines
    assert "| Hunyuan 509 | - | 1801 | - |" in lines


def test_no_clock_table_without_samples():
    assert bench_backward.render_clocks([dict(name="Wan 69")], {}) == []
