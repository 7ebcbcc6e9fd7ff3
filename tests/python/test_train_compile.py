"""radial-train fit --compile (radial_attention/train/compiled.py: the transformer's repeated
blocks under torch.compile) on the tiny Wan and HunyuanVideo pipelines of test_train.py (CPU).

A compiled training step (gradient checkpointing, peft LoRA, the radial op forward and
backward inside the graph) gives eager's loss and LoRA gradients; a compiled fit gives eager's
losses and resumes exactly. Wan runs Inductor (a C++ build of each graph: the slow part);
HunyuanVideo runs the aot_eager backend (the same dynamo trace and autograd graphs, no C++
build) to keep the suite's time down.

Tolerances: everything is float32. Inductor fuses the elementwise work and reorders its
reductions (layer norms, RMS norms, sums in the backward), so a fused op may round
differently from eager by a few float32 ulps (~1e-7 relative). Measured here: the losses
agree to the bit, and each LoRA gradient to ~3e-7 of its largest element, except the
cross-attention's query and key LoRA, whose gradients come from cancellation in the softmax
over mostly-padding text (~1e-5, a hundredth of the others) and agree to 4e-5. TOL (losses,
1e-4) and GRAD_TOL (each gradient against its largest element, 1e-3) leave a wide margin
over that, and stay far below what a real error changes: a LoRA not applied, a missing
gradient or a wrong mask moves a loss by more than 1e-2 (successive losses alone differ by
that much; checked below) and a gradient by its own size.
"""

import numpy as np
import pytest
import torch

from radial_attention.train import FitConfig, fit, lora, models
from radial_attention.train import compiled as compiled_mod
from radial_attention.train.cache import LatentCache
from radial_attention.train.fit import flow_matching_loss

import radial_attention.diffusers as radial
import radial_attention.ops as ops
from test_train import RADIAL, config, hunyuan, needs_radial_backward, one_thread, rel, wan  # noqa: F401

TOL = 1e-4
GRAD_TOL = 1e-3
pytestmark = needs_radial_backward


def lora_model(model_folder, family, seed=3):
    """The transformer as fit prepares it (LoRA on the attention, checkpointing, radial with a
    dense first layer), its lora_B random so that every LoRA gradient is non-zero."""
    torch.manual_seed(seed)
    transformer = models.load_transformer(model_folder)
    transformer.requires_grad_(False)
    params = lora.add_lora(transformer, family, 8, 8.0, 0.0, False)  # rank as config()
    with torch.no_grad():
        for name, p in transformer.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    transformer.enable_gradient_checkpointing()
    transformer.train()
    radial.apply(transformer, dense_timesteps=0, **RADIAL)
    return transformer, params


def op_calls(monkeypatch):
    """Counts the library's radial forward and backward calls (what the op's real
    implementations call; tracing with fake tensors does not)."""
    calls = {"forward": 0, "backward": 0}
    real = ops._lib.lib()

    class Counted:
        def __getattr__(self, name):
            kind = {"radial_attention_with_precision": "forward",
                    "radial_attention_backward": "backward"}.get(name)
            if kind is not None:
                calls[kind] += 1
            return getattr(real, name)

    monkeypatch.setattr(ops._lib, "lib", lambda: Counted())
    return calls


def test_compiled_step_gradients_match_eager(wan, monkeypatch):
    """One step of two clips (batch 2): the compiled blocks' loss and LoRA gradients against
    eager's, with the radial op called as often (forward, its recomputation, backward)."""
    cache = LatentCache(wan["cache"])
    batch = cache.collate([0, 1])
    noise = torch.randn(batch["latents"].shape, generator=torch.Generator().manual_seed(5))
    sigma = torch.tensor([0.3, 0.8])
    calls = op_calls(monkeypatch)
    results = []
    for compile_it in (False, True):
        transformer, params = lora_model(wan["model"], "wan")
        if compile_it:
            compiled_mod.compile_blocks(transformer)
        before = dict(calls)
        loss = flow_matching_loss(transformer, "wan", batch, noise, sigma, torch.float32, 512, 6.0)
        loss.backward()
        used = {k: calls[k] - before[k] for k in calls}
        results.append((float(loss.detach()), [p.grad.clone() for p in params], used))
    (eager_loss, eager_grads, eager_calls), (got_loss, got_grads, got_calls) = results
    # Radial layer 1 of 2: its forward, the forward again under checkpointing, one backward.
    assert eager_calls == got_calls == {"forward": 2, "backward": 1}
    assert abs(got_loss - eager_loss) <= TOL * eager_loss
    assert len(got_grads) == len(eager_grads) > 0
    for got, expected in zip(got_grads, eager_grads):
        assert float(expected.abs().max()) > 0
        assert rel(got, expected) < GRAD_TOL


def test_compiled_fit_matches_eager_and_resumes(wan, tmp_path):
    """4 steps eager and compiled, and the compiled run stopped at step 2 and resumed."""
    common = dict(RADIAL, batch_size=2, max_steps=4, checkpoint_every=2)
    eager = fit(config(wan, tmp_path / "eager", **common))
    whole = fit(config(wan, tmp_path / "whole", compile=True, **common))
    first = fit(config(wan, tmp_path / "split", compile=True, **dict(common, max_steps=2)))
    torch.manual_seed(12345)  # the resumed run must restore every generator itself
    second = fit(config(wan, tmp_path / "split", compile=True, resume="latest", **common))
    assert all(block._compiled_call_impl is not None for block in whole["transformer"].blocks)
    assert first["losses"] + second["losses"] == whole["losses"]  # exactly
    from safetensors.torch import load_file

    a, b = load_file(str(whole["lora"])), load_file(str(second["lora"]))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert np.allclose(whole["losses"], eager["losses"], rtol=TOL, atol=0), (whole["losses"], eager["losses"])
    # The tolerance can fail: successive losses differ by far more than it.
    assert np.min(np.abs(np.diff(eager["losses"])) / np.abs(eager["losses"][1:])) > 100 * TOL
    assert eager["attention_calls"]["radial"] > 0  # the radial layer really ran


def test_hunyuan_compiled_fit_matches_eager(hunyuan, tmp_path, monkeypatch):
    """HunyuanVideo (double- and single-stream blocks, token refiner, patch embedding, the
    radial mask over the valid text): compiled fit losses against eager's."""
    monkeypatch.setattr(compiled_mod, "BACKEND", "aot_eager")
    common = dict(model=str(hunyuan["model"]), cache=str(hunyuan["cache"]), rank=4, dtype="fp32",
                  learning_rate=3e-3, max_steps=3, progress=False, checkpoint_every=0, seed=7,
                  **RADIAL)
    eager = fit(FitConfig(output=str(tmp_path / "eager"), **common))
    got = fit(FitConfig(output=str(tmp_path / "compiled"), compile=True, **common))
    assert got["transformer"].single_transformer_blocks[0]._compiled_call_impl is not None
    assert np.allclose(got["losses"], eager["losses"], rtol=TOL, atol=0), (got["losses"], eager["losses"])
    assert eager["attention_calls"]["radial"] > 0


def test_compile_settings_are_checked(wan, tmp_path):
    """--compile is a bool, refused with Ulysses; the recompile room covers the buckets."""
    from radial_attention import RadialError

    with pytest.raises(RadialError, match="compile"):
        config(wan, tmp_path, compile="yes").check()
    with pytest.raises(RadialError, match="ulysses 2"):
        config(wan, tmp_path, compile=True, ulysses=2).check()
    cache = LatentCache(wan["cache"])
    assert compiled_mod.expected_graphs(cache, "wan") == compiled_mod.GRAPHS_PER_SHAPE * 2


def test_cli_and_toml_take_compile(tmp_path):
    from radial_attention.train import cli

    base = ["fit", "--model", "m", "--cache", "c", "--output", "o"]
    assert cli.parse_args(base).compile is False
    assert cli.parse_args(base + ["--compile"]).compile is True
    toml = tmp_path / "fit.toml"
    toml.write_text("compile = true\n")
    assert cli.parse_args(base + ["--config", str(toml)]).compile is True
    assert cli.parse_args(base + ["--config", str(toml), "--compile", "false"]).compile is False


def test_bench_train_tiny_compiled(tmp_path, monkeypatch):
    """bench/gpu/bench_train.py --tiny --compile: dense and radial with compiled blocks, the
    table says so (aot_eager here: the logic, not Inductor's speed)."""
    import pathlib

    monkeypatch.setattr(compiled_mod, "BACKEND", "aot_eager")
    monkeypatch.syspath_prepend(str(pathlib.Path(__file__).resolve().parents[2] / "bench" / "gpu"))
    import bench_train

    out = tmp_path / "train.md"
    assert bench_train.main([str(out), "--tiny", "--frames", "17", "--steps", "1", "--layers", "2",
                             "--compile"]) == 0
    text = out.read_text()
    assert "Blocks: compiled, dense and radial alike" in text
    rows = [line.split("|")[1:-1] for line in text.splitlines() if line.startswith("| 17 |")]
    assert [r[2].strip() for r in rows[:2]] == ["dense", "radial"]
    assert all(r[3].strip().endswith(", compiled blocks") and float(r[4]) > 0 for r in rows[:2])
