"""The planner through the C ABI: masks, statistics, presets and the cache."""

import json
import subprocess

import pytest
import torch

import radial_attention as ra
from conftest import cli_path, golden_dir


def read_golden(path):
    lines = [l.rstrip("\n") for l in path.read_text().splitlines() if not l.startswith("#")]
    rows, cols = map(int, lines[0].split())
    mask = torch.zeros(rows, cols, dtype=torch.bool)
    for r, line in enumerate(lines[1:1 + rows]):
        for interval in line.split():
            a, b = map(int, interval.split(":"))
            mask[r, a:b] = True
    return mask


def golden_files():
    d = golden_dir()
    return sorted(d.glob("*.mask")) if d else []


@pytest.mark.skipif(not golden_files(), reason="golden masks (tests/golden) not present")
@pytest.mark.parametrize("path", golden_files(), ids=lambda p: p.stem)
def test_plan_matches_golden_mask(path):
    model, f, t, d, b = path.stem.split("_")
    plan = ra.plan(frames=int(f[1:]), tokens_per_frame=int(t[1:]), model=model,
                   decay_factor=float(d[1:]), block_size=int(b[1:]))
    expected = read_golden(path)
    got = plan.block_mask()
    assert got.shape == expected.shape
    assert torch.equal(got, expected), f"{int((got != expected).sum())} blocks differ"
    assert plan.kept_blocks == int(expected.sum())


def test_documented_densities():
    # docs/radial-mask.md: Wan2.1-14B at 69 frames 768x1280 keeps 28.7% of the blocks,
    # HunyuanVideo at 509 frames 720p 10.7%.
    wan = ra.plan(video_frames=69, height=768, width=1280, model="wan", decay_factor=0.2)
    assert (wan.key.frames, wan.key.tokens_per_frame) == (18, 3840)
    assert wan.density == pytest.approx(0.287, abs=5e-4)
    hy = ra.plan(frames=128, tokens_per_frame=3600, model="hunyuan", decay_factor=0.95)
    assert hy.density == pytest.approx(0.107, abs=5e-4)


def test_stats_are_consistent_with_the_layout():
    plan = ra.plan(frames=7, tokens_per_frame=300, text_tokens=40, text_valid=25,
                   model="hunyuan", decay_factor=0.5, block_size=64)
    assert plan.seq_len == 7 * 300 + 40
    assert plan.key_limit == 7 * 300 + 25
    assert plan.block_rows == plan.block_cols == -(-plan.seq_len // 64)
    mask = plan.block_mask()
    assert plan.kept_blocks == int(mask.sum())
    assert plan.total_blocks == plan.block_rows * plan.block_cols
    assert plan.density == pytest.approx(plan.kept_blocks / plan.total_blocks)
    assert plan.flops_per_head_dim == pytest.approx(4 * plan.kept_blocks * 64 * 64)
    assert plan.dense_flops_per_head_dim == pytest.approx(4 * plan.seq_len ** 2)
    # Every row has a softmax; text rows and valid text columns are dense.
    assert mask.any(dim=1).all()
    text_row = (7 * 300) // 64  # the partial last video block and the text are dense
    assert mask[text_row:, : -(-plan.key_limit // 64)].all()
    # The CSC is the transpose of the CSR.
    col_offset, row_index = plan.csc()
    transposed = torch.zeros_like(mask)
    for c in range(plan.block_cols):
        transposed[row_index[col_offset[c]:col_offset[c + 1]].long(), c] = True
    assert torch.equal(transposed, mask)


def test_dense_plan_keeps_every_valid_block():
    plan = ra.plan(frames=3, tokens_per_frame=100, text_tokens=30, text_valid=10, pattern="dense",
                   block_size=64)
    mask = plan.block_mask()
    valid_cols = -(-plan.key_limit // 64)
    assert mask[:, :valid_cols].all() and not mask[:, valid_cols:].any()
    assert plan.token_mask()[:, : plan.key_limit].all()
    assert not plan.token_mask()[:, plan.key_limit:].any()


def test_presets():
    assert ra.geometry_from_video("wan", 81, 480, 832) == (21, 30 * 52)
    assert ra.geometry_from_video("hunyuan", 129, 720, 1280) == (33, 45 * 80)


def test_cache_is_per_geometry_and_spec():
    a = ra.plan(frames=4, tokens_per_frame=64, block_size=64)
    assert ra.plan(frames=4, tokens_per_frame=64, block_size=64) is a
    assert ra.plan(frames=5, tokens_per_frame=64, block_size=64) is not a
    assert ra.plan(frames=4, tokens_per_frame=64, block_size=64, decay_factor=0.5) is not a
    assert ra.plan(frames=4, tokens_per_frame=64, block_size=128) is not a
    assert ra.plan(frames=4, tokens_per_frame=64, block_size=64, model="hunyuan") is not a


@pytest.mark.skipif(cli_path() is None, reason="the radial CLI is not built (set RADIAL_CLI)")
@pytest.mark.parametrize("args", [
    dict(model="wan", frames=21, tokens_per_frame=1560, decay_factor=0.2, block_size=128),
    dict(model="hunyuan", frames=13, tokens_per_frame=1560, decay_factor=0.95, block_size=64,
         text_tokens=256, text_valid=77),
])
def test_numbers_match_the_cli(args):
    flags = ["plan", "--json"]
    for name, value in args.items():
        flags += ["--" + name.replace("_", "-"), str(value)]
    report = json.loads(subprocess.run([cli_path(), *flags], check=True, capture_output=True,
                                       text=True).stdout)
    plan = ra.plan(**args)
    assert report["kept_blocks"] == plan.kept_blocks
    assert report["total_blocks"] == plan.total_blocks
    assert report["tokens"] == plan.seq_len
    assert report["key_limit"] == plan.key_limit
    assert report["density"] == pytest.approx(plan.density, rel=1e-12)
    assert report["flops_ratio"] == pytest.approx(plan.flops_ratio, rel=1e-12)
