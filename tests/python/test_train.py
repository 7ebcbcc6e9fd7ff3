"""radial-train (python -m radial_attention.train) on tiny random Wan and HunyuanVideo
pipelines and synthetic videos written to disk as real MP4 files (CPU).

prepare -> fit; the cache against the pipeline's own encoders; loss falls on a memorisation
task; the saved LoRA reloads into a fresh pipeline and reproduces the trained transformer;
a resumed run repeats an uninterrupted one exactly; a 2-process data-parallel run (gloo,
torchrun) matches one process; bad inputs are refused by name; an interrupted run keeps its
finished checkpoints.
"""

import json
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers")
pytest.importorskip("peft")
imageio = pytest.importorskip("imageio.v2")
pytest.importorskip("imageio_ffmpeg")

import radial_attention.diffusers as radial  # noqa: E402
import tiny_models  # noqa: E402
from radial_attention import RadialError  # noqa: E402
from radial_attention.train import FitConfig, cli, fit, models, prepare  # noqa: E402
from radial_attention.train import checkpoint as ckpt  # noqa: E402
from radial_attention.train.cache import LatentCache  # noqa: E402
from radial_attention.train.fit import flow_matching_loss  # noqa: E402


def radial_backward_available() -> bool:
    """Whether radial_attention::attention has a backward pass (issue 11)."""
    import radial_attention as ra

    plan = ra.plan(frames=2, tokens_per_frame=64, model="wan", decay_factor=1.0, block_size=64)
    q = torch.randn(1, plan.seq_len, 1, 64, requires_grad=True)
    try:
        ra.attention(q, q, q, plan).sum().backward()
    except NotImplementedError:
        return False
    return True


needs_radial_backward = pytest.mark.skipif(
    not radial_backward_available(),
    reason="radial_attention::attention has no backward pass yet (issue 11): radial training "
           "paths cannot run")
# Radial settings that really mask something at the tiny size (5 latent frames x 64 tokens).
RADIAL = dict(pattern="radial", dense_layers=1, block_size=64, decay_factor=0.5)
PATTERNS = [pytest.param(dict(pattern="stock"), id="stock"),
            pytest.param(RADIAL, id="radial", marks=needs_radial_backward)]


def pattern_video(frames, height, width, seed):
    """uint8 [F, H, W, 3]: smooth moving colour gradients (x264 keeps them well)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    a, b, c = rng.uniform(0.5, 2.0, 3)
    out = []
    for f in range(frames):
        r = 127 + 100 * np.sin((xx * a + f * 3) / 17)
        g = 127 + 100 * np.cos((yy * b - f * 2) / 13)
        bl = 127 + 100 * np.sin((xx + yy) * c / 23 + f / 5)
        out.append(np.stack([r, g, bl], -1).astype(np.uint8))
    return np.stack(out)


def write_video(path, frames):
    with imageio.get_writer(str(path), fps=8, codec="libx264", quality=9, macro_block_size=1) as w:
        for f in frames:
            w.append_data(f)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: these models are too small to gain from more, and a busy machine
    makes spinning OpenMP threads very slow."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def wan(tmp_path_factory):
    """A tiny Wan pipeline on disk, three clips (two 20-frame squares, one 12-frame 3:2) and
    their cache, buckets 9/17 frames x 128x128/128x192."""
    root = tmp_path_factory.mktemp("wan")
    tiny_models.wan_pipeline().save_pretrained(str(root / "model"))
    data = root / "videos"
    data.mkdir()
    clips = {"a.mp4": (pattern_video(20, 144, 144, 1), "a cat walks on the grass"),
             "b.mp4": (pattern_video(20, 144, 144, 2), "a dog runs in snow"),
             "c.mp4": (pattern_video(12, 120, 180, 3), "a cat in snow")}
    for name, (frames, caption) in clips.items():
        write_video(data / name, frames)
    (data / "a.txt").write_text(clips["a.mp4"][1])
    (data / "b.txt").write_text(clips["b.mp4"][1])
    (data / "metadata.jsonl").write_text(json.dumps({"file_name": "c.mp4", "caption": clips["c.mp4"][1]}) + "\n")
    cache = root / "cache"
    prepare(data, root / "model", cache, frames=[9, 17], resolutions=[(128, 128), (128, 192)],
            progress=False)
    return {"root": root, "model": root / "model", "data": data, "cache": cache, "clips": clips}


def config(wan, output, **kwargs):
    values = dict(model=str(wan["model"]), cache=str(wan["cache"]), output=str(output), rank=8,
                  pattern="stock", dtype="fp32", learning_rate=3e-3, max_steps=4,
                  checkpoint_every=0, progress=False, seed=7)
    values.update(kwargs)
    return FitConfig(**values)


def rel(a, b):
    return float((a.double() - b.double()).abs().max() / b.double().abs().max())


# --- prepare -----------------------------------------------------------------------------------

def test_prepare_buckets_and_caption_sources(wan):
    manifest = LatentCache(wan["cache"]).manifest
    got = {pathlib.Path(s["video"]).name: (s["frames"], s["height"], s["width"], s["caption"],
                                           tuple(s["latent_shape"])) for s in manifest["samples"]}
    assert got == {"a.mp4": (17, 128, 128, "a cat walks on the grass", (16, 5, 16, 16)),
                   "b.mp4": (17, 128, 128, "a dog runs in snow", (16, 5, 16, 16)),
                   "c.mp4": (9, 128, 192, "a cat in snow", (16, 3, 16, 24))}
    assert manifest["fingerprint"] == {"family": "wan", "in_channels": 16, "text_dim": 32,
                                       "patch_size": [1, 2, 2]}
    assert sorted(LatentCache(wan["cache"]).buckets.values()) == [[0, 1], [2]]


def test_prepared_latents_and_text_match_the_pipeline(wan):
    """The cache holds what the pipeline's own VAE and text encoder give for the video's
    frames, in the normalisation the pipeline undoes before decoding."""
    from diffusers import WanPipeline

    from radial_attention.train import videos

    pipe = WanPipeline.from_pretrained(str(wan["model"]))
    cache = LatentCache(wan["cache"])
    sample = cache.load(0)  # a.mp4
    frames = videos.read_frames(wan["data"] / "a.mp4", 17)
    written = wan["clips"]["a.mp4"][0][:17]
    assert frames.shape == written.shape
    assert np.abs(frames.astype(float) - written.astype(float)).mean() < 4  # a real decode
    pixels = videos.resize_crop(frames, 128, 128)
    assert pixels.shape == (3, 17, 128, 128) and -1 <= float(pixels.min()) < float(pixels.max()) <= 1
    with torch.no_grad():
        raw = pipe.vae.encode(pixels[None]).latent_dist.mean
    # The pipeline decodes latents / (1 / std) + mean: the cache must hold the inverse.
    mean = torch.tensor(pipe.vae.config.latents_mean).view(1, 16, 1, 1, 1)
    inv_std = 1.0 / torch.tensor(pipe.vae.config.latents_std).view(1, 16, 1, 1, 1)
    assert rel((sample["latents"][None] / inv_std + mean), raw) < 1e-5
    embeds, _ = pipe.encode_prompt("a cat walks on the grass", do_classifier_free_guidance=False,
                                   max_sequence_length=512)
    length = sample["prompt_embeds"].shape[0]
    assert length == len(pipe.tokenizer("a cat walks on the grass").input_ids) == 6
    assert torch.allclose(sample["prompt_embeds"], embeds[0, :length], atol=1e-6)
    assert torch.equal(embeds[0, length:], torch.zeros_like(embeds[0, length:]))


# --- fit ---------------------------------------------------------------------------------------

def held_out_loss(transformer, cache_folder, family="wan", text_length=512):
    """Flow-matching loss at fixed noise and timesteps over every cached clip."""
    cache = LatentCache(cache_folder)
    transformer.eval()
    losses = []
    with torch.no_grad():
        for i in range(len(cache)):
            batch = cache.collate([i])
            for j, sigma in enumerate((0.25, 0.5, 0.75)):
                noise = torch.randn(batch["latents"].shape, generator=torch.Generator().manual_seed(100 * i + j))
                losses.append(float(flow_matching_loss(transformer, family, batch, noise, torch.tensor([sigma]),
                                                       torch.float32, text_length, 6.0)))
    return sum(losses) / len(losses)


@pytest.fixture(scope="module", params=PATTERNS)
def trained(request, wan):
    """30 steps of memorisation on the three clips."""
    out = wan["root"] / f"trained-{request.param['pattern']}"
    result = fit(config(wan, out, max_steps=30, **request.param))
    return dict(result, output=out, settings=request.param)


def test_memorisation_loss_falls(wan, trained):
    settings = trained["settings"]
    base = models.load_transformer(wan["model"])
    tuned = trained["transformer"]
    for model in (base, tuned):
        if settings["pattern"] == "radial":
            radial.apply(model, dense_timesteps=0, **{k: v for k, v in settings.items()})
    before = held_out_loss(base, wan["cache"])
    after = held_out_loss(tuned, wan["cache"])
    radial.remove(tuned)
    # 2 blocks, 30 steps, each block run twice a step (forward, then again under gradient
    # checkpointing in the backward): radial trains the second block, the first stays dense.
    calls = {"stock": 120} if settings["pattern"] == "stock" else {"stock": 60, "radial": 60}
    assert trained["attention_calls"] == calls
    losses = trained["losses"]
    assert len(losses) == 30 and all(np.isfinite(losses))
    assert after < 0.8 * before, (before, after)
    assert np.mean(losses[-5:]) < 0.85 * np.mean(losses[:5]), losses
    logged = [json.loads(line) for line in (trained["output"] / "losses.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged] == list(range(1, 31))
    assert [r["loss"] for r in logged] == losses


def test_saved_lora_reloads_and_reproduces_the_trained_model(wan, trained):
    from diffusers import WanPipeline

    path = trained["lora"]
    assert path.name == "pytorch_lora_weights.safetensors"
    inputs = tiny_models.wan_inputs(channels=16, text=9, text_dim=32, seed=3, timestep=400.0)
    with torch.no_grad():
        expected = trained["transformer"](**inputs).sample
    fresh = WanPipeline.from_pretrained(str(wan["model"]))
    with torch.no_grad():
        base = fresh.transformer(**inputs).sample
    fresh.load_lora_weights(str(path))
    with torch.no_grad():
        got = fresh.transformer(**inputs).sample
    assert rel(got, expected) < 1e-5
    assert rel(base, expected) > 1e-3  # the LoRA changes the model


def test_generate_uses_the_trained_lora(wan, trained, capsys):
    from radial_attention import generate

    out = trained["output"] / "video.mp4"
    args = ["--model", str(wan["model"]), "--frames", "9", "--height", "128", "--width", "128",
            "--steps", "2", "--dense-steps", "1", "--dense-layers", "0", "--block-size", "64",
            "--device", "cpu", "--dtype", "fp32", "--seed", "1", "--output", str(out)]
    generate.main(args + ["--lora", str(trained["lora"])])
    printed = capsys.readouterr().out
    assert f"lora             {trained['lora']} (scale 1.0)" in printed
    assert out.exists() and out.stat().st_size > 0


def losses_of(output):
    return [json.loads(line)["loss"] for line in (pathlib.Path(output) / "losses.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("settings", PATTERNS)
def test_resumed_run_repeats_the_uninterrupted_one(wan, tmp_path, settings):
    common = dict(max_steps=6, grad_accum=2, warmup_steps=3, checkpoint_every=3, **settings)
    whole = fit(config(wan, tmp_path / "whole", **common))
    first = fit(config(wan, tmp_path / "split", **dict(common, max_steps=3)))
    assert [p.name for p in ckpt.list_checkpoints(tmp_path / "split" / "checkpoints")] == ["step-000003"]
    torch.manual_seed(12345)  # the resumed run must restore every generator itself
    second = fit(config(wan, tmp_path / "split", resume="latest", **common))
    assert first["losses"] + second["losses"] == whole["losses"]  # exactly
    from safetensors.torch import load_file

    a = load_file(str(whole["lora"]))
    b = load_file(str(second["lora"]))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert losses_of(tmp_path / "split") == whole["losses"]


def test_resume_refuses_a_different_run(wan, tmp_path):
    fit(config(wan, tmp_path, max_steps=2, checkpoint_every=2))
    with pytest.raises(RadialError, match="learning_rate") as info:
        fit(config(wan, tmp_path, max_steps=3, learning_rate=1e-2, resume="latest"))
    assert "step-000002" in str(info.value)


def test_interrupted_run_keeps_finished_checkpoints(wan, tmp_path, monkeypatch):
    real_save = torch.save
    calls = []

    def dying_save(obj, f, *args, **kwargs):  # killed while writing the second checkpoint
        calls.append(1)
        if len(calls) == 2:
            f.write(b"half a checkpoint")
            raise KeyboardInterrupt
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(ckpt.torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        fit(config(wan, tmp_path, max_steps=6, checkpoint_every=2, keep_checkpoints=1))
    folder = tmp_path / "checkpoints"
    assert [p.name for p in ckpt.list_checkpoints(folder)] == ["step-000002"]
    assert any(p.name.startswith(".tmp-step-000004") for p in folder.iterdir())
    monkeypatch.setattr(ckpt.torch, "save", real_save)
    uninterrupted = fit(config(wan, tmp_path / "whole", max_steps=6, checkpoint_every=2))
    resumed = fit(config(wan, tmp_path, max_steps=6, checkpoint_every=2, keep_checkpoints=1,
                         resume="latest"))
    assert resumed["losses"] == uninterrupted["losses"][2:]
    assert losses_of(tmp_path) == uninterrupted["losses"]  # steps 3-4 logged once, not twice
    assert [p.name for p in folder.iterdir()] == ["step-000006"]  # leftover cleaned, old pruned


def torchrun_fit(processes, model, cache, output, flags):
    """`radial-train fit` under torchrun (gloo on the CPU); the workers import the package
    this test imported (source tree or installed)."""
    import radial_attention

    package_root = str(pathlib.Path(radial_attention.__file__).resolve().parent.parent)
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([package_root, os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc-per-node", str(processes), "-m", "radial_attention.train", "fit",
                           "--model", str(model), "--cache", str(cache), "--output", str(output)]
                          + flags, env=env, capture_output=True, text=True, timeout=300)


def assert_same_run(single, output):
    """The losses and the final LoRA of a torchrun run in `output` against one process's."""
    got = losses_of(output)
    assert len(got) == len(single["losses"])
    assert np.allclose(got, single["losses"], rtol=1e-5, atol=0), (got, single["losses"])
    from safetensors.torch import load_file

    a = load_file(str(single["lora"]))
    b = load_file(str(pathlib.Path(output) / "pytorch_lora_weights.safetensors"))
    assert a.keys() == b.keys()
    # Adam's first steps move each weight by about lr * sign(gradient), so the odd element
    # whose gradient is zero up to rounding may step either way: compare whole tensors.
    worst = max(float((b[k] - a[k]).norm() / a[k].norm()) for k in a if a[k].abs().max() > 0)
    assert worst < 1e-3, worst


def torchrun_settings():
    """Radial when its backward exists (else dense, so that the parallelism is still checked)."""
    settings = RADIAL if radial_backward_available() else dict(pattern="stock")
    flags = [x for k, v in settings.items() for x in (f"--{k.replace('_', '-')}", str(v))]
    return settings, flags + ["--rank", "4", "--dtype", "fp32", "--learning-rate", "3e-3",
                              "--max-steps", "3", "--checkpoint-every", "0", "--seed", "5",
                              "--no-progress"]


def test_data_parallel_matches_one_process(wan, tmp_path):
    """torchrun, 2 processes x batch 1 (gloo) against 1 process x batch 2."""
    settings, flags = torchrun_settings()
    single = fit(config(wan, tmp_path / "one", rank=4, max_steps=3, batch_size=2, seed=5, **settings))
    run = torchrun_fit(2, wan["model"], wan["cache"], tmp_path / "two", flags + ["--batch-size", "1"])
    assert run.returncode == 0, run.stderr[-3000:]
    assert_same_run(single, tmp_path / "two")


@pytest.mark.parametrize("family", ["wan", "hunyuan"])
def test_ulysses_matches_one_process(wan, hunyuan, tmp_path, family):
    """--ulysses 2 on 2 processes (one group sharing each video's tokens, gloo) against one
    process on the same samples: same losses, same LoRA; only rank 0 writes."""
    settings, flags = torchrun_settings()
    model = (wan if family == "wan" else hunyuan)["model"]
    cache = (wan if family == "wan" else hunyuan)["cache"]
    single = fit(config(wan, tmp_path / "one", model=str(model), cache=str(cache), rank=4,
                        max_steps=3, batch_size=1, seed=5, checkpoint_every=3, **settings))
    run = torchrun_fit(2, model, cache, tmp_path / "two",
                       flags + ["--batch-size", "1", "--ulysses", "2", "--checkpoint-every", "3"])
    assert run.returncode == 0, run.stderr[-3000:]
    assert_same_run(single, tmp_path / "two")
    assert [p.name for p in ckpt.list_checkpoints(tmp_path / "two" / "checkpoints")] == ["step-000003"]
    _, state = ckpt.load(tmp_path / "two" / "checkpoints" / "step-000003")
    assert state["settings"]["ulysses"] == 2 and len(state["rng"]) == 2
    # A resume with another group size is refused by name (another run's sample assignment).
    with pytest.raises(RadialError, match="ulysses = 1.*ulysses = 2"):
        fit(config(wan, tmp_path / "two", model=str(model), cache=str(cache), rank=4,
                   max_steps=4, batch_size=1, seed=5, resume="latest", **settings))


def test_ulysses_bad_values(wan, tmp_path, monkeypatch, capsys):
    with pytest.raises(RadialError, match="ulysses: expected an int >= 1, got 0"):
        fit(config(wan, tmp_path, ulysses=0))
    code = cli.main(["fit", "--model", str(wan["model"]), "--cache", str(wan["cache"]),
                     "--output", str(tmp_path), "--ulysses", "2", "--no-progress"])
    assert code == 2
    assert "ulysses: expected 1 outside torchrun (--ulysses 2 needs `torchrun" in capsys.readouterr().err
    # 3 processes cannot form groups of 2 (refused before any process group is joined).
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(RadialError, match="ulysses: expected a divisor of the 3 processes"):
        fit(config(wan, tmp_path, ulysses=2))


# --- bad inputs --------------------------------------------------------------------------------

def test_folder_without_videos(wan, tmp_path):
    (tmp_path / "notes.txt").write_text("no videos here")
    with pytest.raises(RadialError, match=f"a folder holding videos.*none in {tmp_path}"):
        prepare(tmp_path, wan["model"], tmp_path / "cache", progress=False)


def test_missing_caption_names_the_file(wan, tmp_path):
    write_video(tmp_path / "x.mp4", pattern_video(9, 64, 64, 0))
    with pytest.raises(RadialError) as info:
        prepare(tmp_path, wan["model"], tmp_path / "cache", progress=False)
    assert info.value.argument == str(tmp_path / "x.mp4")
    assert "x.txt beside it" in str(info.value)


def test_short_video_names_the_file_and_the_frames(wan, tmp_path):
    write_video(tmp_path / "short.mp4", pattern_video(7, 64, 64, 0))
    (tmp_path / "short.txt").write_text("a cat")
    with pytest.raises(RadialError) as info:
        prepare(tmp_path, wan["model"], tmp_path / "cache", frames=[9], resolutions=[(64, 64)],
                progress=False)
    assert info.value.argument == str(tmp_path / "short.mp4")
    assert "expected at least 9 frames" in str(info.value) and "got 7 frames" in str(info.value)


@pytest.mark.parametrize("frames,resolution,argument,expected", [
    (9, (100, 128), "height", "a positive multiple of 16"),
    (9, (128, 120), "width", "a positive multiple of 16"),
    (10, (128, 128), "frames", "4k+1"),
])
def test_sizes_the_model_cannot_take(wan, frames, resolution, argument, expected):
    with pytest.raises(RadialError, match=re.escape(expected)) as info:
        prepare(wan["data"], wan["model"], wan["root"] / "never", frames=[frames],
                resolutions=[resolution], progress=False)
    assert info.value.argument == argument
    assert not (wan["root"] / "never" / "cache.json").exists()


def test_cache_for_another_model(wan, hunyuan, tmp_path):
    with pytest.raises(RadialError, match=f"a cache made for {wan['model']} .transformer.") as info:
        fit(config(wan, tmp_path, cache=str(hunyuan["cache"])))
    assert info.value.argument == str(hunyuan["cache"] / "cache.json")
    assert f"one made for {hunyuan['model']}: family 'hunyuan' (model: 'wan')" in str(info.value)


def test_cli_errors_are_one_line_and_exit_2(wan, tmp_path, capsys):
    code = cli.main(["prepare", "--data", str(tmp_path), "--model", str(wan["model"]),
                     "--cache", str(tmp_path / "c")])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("radial-train prepare: error: radial: data: expected a folder holding videos")
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["fit", "--model", str(wan["model"])])
    assert exit_info.value.code == 2
    assert "--cache, --output" in capsys.readouterr().err


def test_toml_config_and_flags(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('model = "m"\ncache = "c"\noutput = "o"\nrank = 4\nlearning-rate = 2e-4\n'
                    'timestep_range = [100, 900]\nfeed_forward = true\n')
    args = cli.parse_args(["fit", "--config", str(path), "--rank", "16"])
    assert (args.model, args.rank, args.learning_rate, args.timestep_range, args.feed_forward) == \
        ("m", 16, 2e-4, (100.0, 900.0), True)
    path.write_text('rnak = 4\n')
    with pytest.raises(SystemExit):
        cli.parse_args(["fit", "--config", str(path)])
    prep = tmp_path / "prep.toml"
    prep.write_text('data = "d"\nmodel = "m"\ncache = "c"\nframes = [17, 33]\nresolution = ["480x832", "832x480"]\n')
    args = cli.parse_args(["prepare", "--config", str(prep)])
    assert args.frames == [17, 33] and args.resolution == [(480, 832), (832, 480)]


# --- HunyuanVideo ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hunyuan(wan, tmp_path_factory):
    root = tmp_path_factory.mktemp("hunyuan")
    tiny_models.hunyuan_pipeline().save_pretrained(str(root / "model"))
    cache = root / "cache"
    prepare(wan["data"], root / "model", cache, frames=[9, 17], resolutions=[(128, 128), (128, 192)],
            progress=False)
    return {"root": root, "model": root / "model", "cache": cache}


@pytest.mark.parametrize("settings", PATTERNS)
def test_hunyuan_prepare_fit_reload(hunyuan, settings, tmp_path):
    from diffusers import HunyuanVideoPipeline

    cache = LatentCache(hunyuan["cache"])
    sample = cache.load(0)
    assert tuple(sample["latents"].shape) == (4, 5, 16, 16)
    assert sample["prompt_embeds"].shape == (256, 16) and sample["pooled_prompt_embeds"].shape == (8,)
    valid = int(sample["prompt_attention_mask"].sum())
    assert 0 < valid < 256  # padded text: the radial plan masks the padding
    out = tmp_path / "out"
    result = fit(FitConfig(model=str(hunyuan["model"]), cache=str(hunyuan["cache"]), output=str(out),
                           rank=4, dtype="fp32", learning_rate=3e-3, max_steps=12, progress=False,
                           checkpoint_every=0, **settings))
    assert np.mean(result["losses"][-4:]) < np.mean(result["losses"][:4])
    inputs = tiny_models.hunyuan_inputs(batch=1, valid=(9,), text_dim=16, pooled_dim=8, seed=2)
    with torch.no_grad():
        expected = result["transformer"](**inputs).sample
    pipe = HunyuanVideoPipeline.from_pretrained(str(hunyuan["model"]))
    pipe.load_lora_weights(str(result["lora"]))
    with torch.no_grad():
        got = pipe.transformer(**inputs).sample
    assert rel(got, expected) < 1e-5


# --- the cost benchmark's logic ----------------------------------------------------------------

@needs_radial_backward
def test_bench_train_tiny(tmp_path):
    """bench/gpu/bench_train.py --tiny: times dense and radial steps and writes its table."""
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "bench" / "gpu"))
    import bench_train

    out = tmp_path / "train.md"
    assert bench_train.main([str(out), "--tiny", "--frames", "17", "--steps", "1", "--layers", "2",
                             "--commit", "abc1234"]) == 0
    text = out.read_text()
    assert "Commit: abc1234" in text and "Card: **" in text
    rows = [line.split("|")[1:-1] for line in text.splitlines() if line.startswith("| 17 |")]
    kinds = [r[2].strip() for r in rows[:2]]
    assert kinds == ["dense", "radial"]
    for r in rows[:2]:
        assert float(r[4]) > 0  # step seconds
    assert len(rows) == 3  # and the ratio row


# --- Wan2.2 A14B: two experts ------------------------------------------------------------------

def test_timestep_range_bounds_the_sampled_timesteps():
    from radial_attention.train.fit import draw, sample_generator

    for sampling in ("uniform", "logit_normal"):
        cfg = FitConfig(model="m", cache="c", output="o", timestep_sampling=sampling,
                        timestep_range=(0.0, 875.0))
        sigmas = torch.stack([draw(cfg, 5.0, (1,), sample_generator(1, s, 0, 0))[1] for s in range(400)])
        assert float(sigmas.min()) >= 0 and float(sigmas.max()) <= 0.875 + 1e-6
        assert float(sigmas.max()) > 0.8  # and reaches the top of the range
        cfg.timestep_range = (875.0, 1000.0)
        sigmas = torch.stack([draw(cfg, 5.0, (1,), sample_generator(1, s, 0, 0))[1] for s in range(400)])
        assert float(sigmas.min()) >= 0.875 - 1e-6 and float(sigmas.max()) <= 1.0


def test_wan22_low_noise_expert(wan, tmp_path):
    """--transformer transformer_2 trains the second expert; its LoRA loads into it."""
    from diffusers import WanPipeline

    base = tiny_models.wan_pipeline()
    expert = tiny_models.wan_transformer(seed=9, layers=2, in_channels=16, text_dim=32)
    two = WanPipeline(tokenizer=base.tokenizer, text_encoder=base.text_encoder, vae=base.vae,
                      scheduler=base.scheduler, transformer=base.transformer, transformer_2=expert,
                      boundary_ratio=0.875)
    two.save_pretrained(str(tmp_path / "model"))
    result = fit(config(wan, tmp_path / "out", model=str(tmp_path / "model"), max_steps=3,
                        transformer="transformer_2", timestep_range=(0.0, 875.0)))
    inputs = tiny_models.wan_inputs(channels=16, text=9, text_dim=32, seed=4, timestep=300.0)
    with torch.no_grad():
        expected = result["transformer"](**inputs).sample
    fresh = WanPipeline.from_pretrained(str(tmp_path / "model"))
    fresh.load_lora_weights(str(result["lora"]), load_into_transformer_2=True)
    with torch.no_grad():
        got = fresh.transformer_2(**inputs).sample
        other = fresh.transformer(**inputs).sample
    assert rel(got, expected) < 1e-5
    assert rel(other, expected) > 1e-2  # the other expert is another model


def test_unreadable_video_names_the_file(wan, tmp_path):
    (tmp_path / "broken.mp4").write_bytes(b"not a video at all" * 10)
    (tmp_path / "broken.txt").write_text("a cat")
    with pytest.raises(RadialError, match="a video ffmpeg can read") as info:
        prepare(tmp_path, wan["model"], tmp_path / "cache", frames=[9], resolutions=[(64, 64)],
                progress=False)
    assert info.value.argument == str(tmp_path / "broken.mp4")


def test_read_frames_takes_every_nth_frame(tmp_path):
    from radial_attention.train import videos

    written = pattern_video(9, 32, 32, 4)
    write_video(tmp_path / "v.mp4", written)
    got = videos.read_frames(tmp_path / "v.mp4", 5, stride=2)
    assert got.shape == (5, 32, 32, 3)
    def distance(j, i):
        return np.abs(got[j].astype(float) - written[i].astype(float)).mean()

    errors = [distance(j, 2 * j) for j in range(5)]       # frames 0, 2, 4, 6, 8
    others = [distance(j, 2 * j + 1) for j in range(4)]   # their neighbours
    assert max(errors) < 6 and min(others) > max(errors)
    with pytest.raises(RadialError, match=r"expected at least 11 frames \(6 taken every 2\), got 9 frames"):
        videos.read_frames(tmp_path / "v.mp4", 6, stride=2)


def test_cli_prepare_then_fit_with_a_toml_config(wan, tmp_path, capsys):
    """The command line end to end: prepare, then fit from a TOML file with a progress bar."""
    data = tmp_path / "videos"
    data.mkdir()
    write_video(data / "one.mp4", pattern_video(9, 64, 96, 5))
    (data / "metadata.csv").write_text('video,text\none.mp4,"a cat, in snow"\n')
    assert cli.main(["prepare", "--data", str(data), "--model", str(wan["model"]),
                     "--cache", str(tmp_path / "cache"), "--frames", "5,9",
                     "--resolution", "64x96,64x64", "--no-progress"]) == 0
    assert "wrote 1 clips to" in capsys.readouterr().out
    sample = LatentCache(tmp_path / "cache").samples[0]
    assert (sample["frames"], sample["height"], sample["width"], sample["caption"]) == (9, 64, 96, "a cat, in snow")
    toml = tmp_path / "fit.toml"
    toml.write_text(f'model = "{wan["model"]}"\ncache = "{tmp_path / "cache"}"\noutput = "{tmp_path / "out"}"\n'
                    'rank = 2\ndtype = "fp32"\nmax-steps = 3\ncheckpoint-every = 2\nfeed-forward = true\n')
    assert cli.main(["fit", "--config", str(toml), "--max-steps", "2"]) == 0
    captured = capsys.readouterr()
    assert "loss=" in captured.err and "s_per_step=" in captured.err  # the progress bar
    assert f"wrote LoRA {tmp_path / 'out' / 'pytorch_lora_weights.safetensors'}" in captured.out
    assert len(losses_of(tmp_path / "out")) == 2  # the flag won over the file
    from safetensors.torch import load_file

    names = load_file(str(tmp_path / "out" / "pytorch_lora_weights.safetensors")).keys()
    assert any(".ffn.net.0.proj.lora_A" in n for n in names)  # feed-forward adapted too
    assert any(".attn1.to_q.lora_B" in n for n in names) and all(n.startswith("transformer.") for n in names)


def test_objective_follows_the_pipelines_scheduler():
    """Training's noise schedule, timestep and velocity target are the ones the pipeline's
    FlowMatchEulerDiscreteScheduler samples with: its training sigmas are the shifted ones,
    scale_noise mixes as training does, and an Euler step with the target velocity stays on
    the line between the clean latent and the noise."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    from radial_attention.train.fit import shifted_sigma

    for shift in (3.0, 7.0):
        scheduler = FlowMatchEulerDiscreteScheduler(shift=shift)
        u = torch.arange(1000, 0, -1, dtype=torch.float64) / 1000
        assert torch.allclose(scheduler.sigmas.double(), shifted_sigma(u, shift), atol=1e-6)
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(1, 4, 3, 8, 8, generator=g), torch.randn(1, 4, 3, 8, 8, generator=g)
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0)
    scheduler.set_timesteps(8)
    for i in (0, 3, 6):
        sigma, after = float(scheduler.sigmas[i]), float(scheduler.sigmas[i + 1])
        t = scheduler.timesteps[i]
        assert abs(float(t) - 1000 * sigma) < 1e-3  # the transformer sees 1000 sigma
        noisy = (1 - sigma) * x0 + sigma * noise   # as flow_matching_loss builds x_t
        assert torch.allclose(scheduler.scale_noise(x0, t[None], noise), noisy, atol=1e-5)
        scheduler._step_index = i
        stepped = scheduler.step(noise - x0, t, noisy).prev_sample
        assert torch.allclose(stepped, (1 - after) * x0 + after * noise, atol=1e-5)


def test_bf16_weights_train_float32_lora(wan, tmp_path):
    result = fit(config(wan, tmp_path, dtype="bf16", max_steps=2, **(RADIAL if radial_backward_available() else {})))
    model = result["transformer"]
    lora = {n: p for n, p in model.named_parameters() if "lora_" in n}
    base = {n: p for n, p in model.named_parameters() if "lora_" not in n}
    assert lora and all(p.dtype == torch.float32 and p.requires_grad for p in lora.values())
    assert base["blocks.0.attn1.to_q.base_layer.weight"].dtype == torch.bfloat16
    assert not any(p.requires_grad for p in base.values())
    assert all(np.isfinite(result["losses"]))
    assert any(float(p.abs().max()) > 0 for n, p in lora.items() if "lora_B" in n)  # it trained


@pytest.mark.parametrize("backend", ["imageio", "opencv"])
def test_both_video_readers_read_the_same_frames(tmp_path, monkeypatch, backend):
    # The lent GPU machines have OpenCV but not imageio-ffmpeg: both readers must give the
    # frames that were written (x264 keeps these smooth gradients within a few levels).
    pytest.importorskip("cv2")
    from radial_attention.train import videos

    written = pattern_video(9, 48, 64, 5)
    write_video(tmp_path / "v.mp4", written)
    monkeypatch.setenv("RADIAL_VIDEO_BACKEND", backend)
    assert videos.probe(tmp_path / "v.mp4") == (9, 48, 64)
    got = videos.read_frames(tmp_path / "v.mp4", 9)
    assert got.shape == written.shape and got.dtype == np.uint8
    assert np.abs(got.astype(float) - written.astype(float)).mean() < 6
    with pytest.raises(RadialError, match=r"expected at least 10 frames, got 9 frames"):
        videos.read_frames(tmp_path / "v.mp4", 10)


def test_opencv_writer_and_reader_round_trip(tmp_path, monkeypatch):
    pytest.importorskip("cv2")
    from radial_attention import _video

    monkeypatch.setenv("RADIAL_VIDEO_BACKEND", "opencv")
    written = pattern_video(5, 32, 48, 6)
    assert _video.write_video(written, str(tmp_path / "w.mp4"), 8) == str(tmp_path / "w.mp4")
    got = _video.read_frames(tmp_path / "w.mp4", 5)
    assert got.shape == written.shape
    assert np.abs(got.astype(float) - written.astype(float)).mean() < 12  # MPEG-4 part 2
    monkeypatch.setenv("RADIAL_VIDEO_BACKEND", "imageio")  # and ffmpeg reads OpenCV's file
    assert _video.probe(tmp_path / "w.mp4") == (5, 32, 48)


def test_unreadable_video_under_opencv_names_the_file(tmp_path, monkeypatch):
    pytest.importorskip("cv2")
    from radial_attention.train import videos

    (tmp_path / "broken.mp4").write_bytes(b"not a video at all" * 10)
    monkeypatch.setenv("RADIAL_VIDEO_BACKEND", "opencv")
    with pytest.raises(RadialError) as info:
        videos.probe(tmp_path / "broken.mp4")
    assert info.value.argument == str(tmp_path / "broken.mp4")


def test_unknown_video_backend_is_refused(tmp_path, monkeypatch):
    from radial_attention.train import videos

    monkeypatch.setenv("RADIAL_VIDEO_BACKEND", "gstreamer")
    with pytest.raises(RadialError, match=r"RADIAL_VIDEO_BACKEND.*imageio or opencv.*'gstreamer'"):
        videos.probe(tmp_path / "x.mp4")
