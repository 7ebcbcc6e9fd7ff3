"""Pipelines sequence-parallel on CPU processes (gloo): tiny Wan and HunyuanVideo pipelines
give one process's frames; radial_attention.generate under torchrun with --ulysses N: rank 0
alone writes, a rank that fails stops the others with its error, and a degree that is not
the process count is refused."""

import os
import pathlib
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import distributed

pytest.importorskip("diffusers")

HERE = pathlib.Path(__file__).resolve().parent
ARGS = ["--frames", "9", "--height", "128", "--width", "128", "--steps", "2", "--dense-steps", "1",
        "--dense-layers", "0", "--block-size", "64", "--device", "cpu", "--dtype", "fp32"]


@pytest.fixture(scope="module")
def tiny_wan(tmp_path_factory):
    import tiny_models

    folder = tmp_path_factory.mktemp("tiny-wan")
    tiny_models.wan_pipeline().save_pretrained(str(folder))
    return folder


def torchrun(nproc, *args, timeout=600):
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc),
               "--master-port", str(distributed.free_port()), *map(str, args)]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)


def pipeline_frames(family, folder, world):
    """The pipeline's frames (numpy) on this rank: Wan from the saved folder (as generate
    loads it), HunyuanVideo made here (text padded: 16 text tokens, the prompt's valid)."""
    import radial_attention.diffusers as radial
    import tiny_models
    from radial_attention import parallel

    if family == "wan":
        from diffusers import DiffusionPipeline

        pipe = DiffusionPipeline.from_pretrained(str(folder), torch_dtype=torch.float32)
        extra = {}
    else:
        pipe = tiny_models.hunyuan_pipeline()
        extra = dict(prompt_template=tiny_models.HUNYUAN_TEMPLATE, max_sequence_length=16)
    radial.apply(pipe, dense_layers=1 if family == "hunyuan" else 0, dense_timesteps=1,
                 block_size=64)
    if world > 1:
        parallel.enable_ulysses(pipe)
    return pipe("a cat walks on the grass", num_frames=9, height=128, width=128,
                num_inference_steps=2, output_type="np",
                generator=torch.Generator().manual_seed(0), **extra).frames[0]


def frames_worker(rank, world, family, folder):
    return pipeline_frames(family, folder, world)


@pytest.mark.parametrize("family", ["wan", "hunyuan"])
def test_pipeline_frames_equal_one_process(family, tiny_wan):
    expected = pipeline_frames(family, tiny_wan, 1)
    assert expected.std() > 0
    for rank, frames in enumerate(distributed.run(2, frames_worker, family, tiny_wan)):
        assert frames.shape == expected.shape
        assert np.abs(frames - expected).max() <= 1e-4, rank


def test_rank_zero_writes(tiny_wan, tmp_path):
    out = tmp_path / "video.mp4"
    run = torchrun(2, "-m", "radial_attention.generate", "--ulysses", "2", "--model", tiny_wan,
                   *ARGS, "--output", out)
    assert run.returncode == 0, run.stderr[-4000:]
    assert run.stdout.count("wrote ") == 1, run.stdout
    assert "ulysses          2 ranks" in run.stdout
    # 2 steps x 2 layers x 2 guidance passes, the first step dense; rank 0's count.
    assert "attention calls  radial 4, dense 4" in run.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) in (["video.mp4"], ["video_frames"])


def test_a_failing_rank_stops_the_others(tiny_wan, tmp_path):
    start = time.monotonic()
    run = torchrun(2, HERE / "generate_failing_rank.py", "--ulysses", "2", "--model", tiny_wan,
                   *ARGS, "--output", tmp_path / "video.mp4", timeout=300)
    assert run.returncode != 0
    assert "[rank 1]" in run.stderr and "injected failure on rank 1" in run.stderr, run.stderr[-4000:]
    assert time.monotonic() - start < 240  # well inside the collectives' timeout (900 s)
    assert not any(tmp_path.iterdir())


def test_degree_must_match_the_processes(tiny_wan, tmp_path):
    run = torchrun(2, "-m", "radial_attention.generate", "--ulysses", "4", "--model", tiny_wan,
                   *ARGS, "--output", tmp_path / "video.mp4", timeout=300)
    assert run.returncode != 0
    assert ("radial: ulysses: expected the number of processes torchrun started (2;"
            in run.stderr), run.stderr[-4000:]


def test_degree_below_one_is_a_usage_error(capsys):
    from radial_attention import generate

    with pytest.raises(SystemExit) as info:
        generate.parse_args(["--model", "m", "--ulysses", "0"])
    assert info.value.code == 2
    assert "--ulysses: expected an int >= 1, got 0" in capsys.readouterr().err
