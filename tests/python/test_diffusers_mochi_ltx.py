"""radial_attention.diffusers on tiny random Mochi-1 and LTX-Video transformers (saved and
reloaded as diffusers does) and pipelines (CPU). One MODELS entry per family; test_diffusers.py covers Wan and HunyuanVideo.

The independent check of the radial path: the library's op replaced by dense attention under
the plan's token mask (torch's SDPA) must give what the radial processor gives.
"""

import pytest
import torch

pytest.importorskip("diffusers")

import radial_attention as ra  # noqa: E402
import radial_attention.diffusers as radial  # noqa: E402
import tiny_models  # noqa: E402
from radial_attention.plan import get as get_plan  # noqa: E402
from radial_attention.diffusers import _processor  # noqa: E402

# family: tiny transformer, its inputs (frames, height, width in latent pixels), the stock
# processor's class name, the layers, the preset, and the pipeline (with a size in video pixels
# and frames it takes).
MODELS = {
    "mochi": dict(transformer=tiny_models.mochi_transformer, inputs=tiny_models.mochi_inputs,
                  stock="MochiAttnProcessor2_0", layers=2, preset="mochi", patch=2,
                  pipeline=tiny_models.mochi_pipeline, video=(13, 64, 64)),
    "ltx": dict(transformer=tiny_models.ltx_transformer, inputs=tiny_models.ltx_inputs,
                stock="LTXVideoAttnProcessor", layers=2, preset="ltx-video", patch=1,
                pipeline=tiny_models.ltx_pipeline, video=(17, 96, 64)),
}


def rel(a, b):
    return float((a.double() - b.double()).abs().max() / b.double().abs().max())


def run(model, inputs):
    with torch.no_grad():
        return model(**inputs).sample


def masked_reference(q, k, v, plan_key, **_options):
    """Dense attention of [B, S, H, D] tensors under the plan's token mask (SDPA, float64)."""
    mask = get_plan(plan_key).token_mask()
    out = torch.nn.functional.scaled_dot_product_attention(
        *(t.double().transpose(1, 2) for t in (q, k, v)), attn_mask=mask)
    return out.transpose(1, 2).to(q.dtype)


@pytest.fixture(params=sorted(MODELS))
def family(request):
    return request.param


def reloaded(model, folder):
    """The model saved with save_pretrained and loaded back with from_pretrained."""
    model.save_pretrained(str(folder))
    return type(model).from_pretrained(str(folder)).eval()


def test_stock_pattern_equals_stock_exactly(family, seed, tmp_path):
    m = MODELS[family]
    model, inputs = reloaded(m["transformer"](), tmp_path), m["inputs"](seed=seed)
    expected = run(model, inputs)
    state = radial.apply(model, pattern="stock")
    assert state.settings.model == m["preset"]
    assert torch.equal(run(model, inputs), expected)
    assert state.calls == {"stock": m["layers"]}
    radial.remove(model)
    assert torch.equal(run(model, inputs), expected)
    assert all(type(b.attn1.processor).__name__ == m["stock"] for b in model.transformer_blocks)


def test_dense_pattern_matches_stock(family, seed, tmp_path):
    m = MODELS[family]
    model, inputs = reloaded(m["transformer"](), tmp_path), m["inputs"](seed=seed)
    expected = run(model, inputs)
    state = radial.apply(model, pattern="dense", dense_layers=0, dense_timesteps=0, block_size=64)
    assert rel(run(model, inputs), expected) < 1e-5
    assert state.calls == {"radial": m["layers"]}


def test_mochi_text_mask_with_holes_matches_stock(seed):
    """The stock processor gathers the mask's nonzero text positions, wherever they are."""
    model = tiny_models.mochi_transformer()
    inputs = tiny_models.mochi_inputs(valid=((0, 2, 3, 7, 11), tuple(range(12))), seed=seed)
    expected = run(model, inputs)
    radial.apply(model, pattern="dense", dense_layers=0, dense_timesteps=0, block_size=64)
    assert rel(run(model, inputs), expected) < 1e-5


# Latent (frames, height, width): tokens per frame 64, 60 (not a multiple of the block, nor is
# the sequence) and 15.
@pytest.mark.parametrize("shape", [(6, 16, 16), (7, 12, 20), (9, 6, 10)])
def test_radial_equals_masked_reference(family, shape, seed, monkeypatch, tmp_path):
    m = MODELS[family]
    frames, height, width = shape
    h, w = height * m["patch"] // 2, width * m["patch"] // 2  # same tokens per frame for both
    model = reloaded(m["transformer"](), tmp_path)
    inputs = m["inputs"](frames=frames, height=h, width=w, seed=seed)
    stock = run(model, inputs)
    state = radial.apply(model, dense_layers=1, dense_timesteps=0, block_size=64, decay_factor=0.5)
    got = run(model, inputs)
    tokens = (h // m["patch"]) * (w // m["patch"])
    assert state.geometry == (frames, tokens)
    assert state.calls == {"stock": 1, "radial": m["layers"] - 1}
    plan = ra.plan(frames=frames, tokens_per_frame=tokens, model=m["preset"], decay_factor=0.5,
                   block_size=64)
    assert plan.density < 1.0  # the mask really masks something
    monkeypatch.setattr(_processor, "attention", masked_reference)
    expected = run(model, inputs)
    assert rel(got, expected) < 1e-5
    assert rel(got, stock) > 1e-4


def test_sink_rule_follows_the_preset():
    """Mochi plans as HunyuanVideo does (no sink: its text is in the attention); LTX-Video
    as Wan does (the first frame is every query's sink)."""
    def mask(model):
        return ra.plan(frames=12, tokens_per_frame=256, model=model, decay_factor=0.5,
                       block_size=64).block_mask()

    assert torch.equal(mask("mochi"), mask("hunyuan"))
    assert torch.equal(mask("ltx-video"), mask("wan"))
    assert mask("ltx-video")[:, 0].all() and not mask("mochi")[:, 0].all()


@pytest.mark.parametrize("family_name,timesteps,steps", [
    # Mochi's pipeline passes rising timesteps; LTX's falling ones. Two calls per step
    # (classifier-free guidance), then a new generation.
    ("mochi", (100, 100, 200, 200, 300, 300, 50), (0, 0, 1, 1, 2, 2, 0)),
    ("ltx", (900, 900, 800, 800, 700, 700, 950), (0, 0, 1, 1, 2, 2, 0)),
])
def test_steps_are_counted_from_timesteps(family_name, timesteps, steps, seed):
    m = MODELS[family_name]
    model, inputs = m["transformer"](), m["inputs"](seed=seed)
    state = radial.apply(model, dense_layers=0, dense_timesteps=2, block_size=64)
    seen = []
    for t in timesteps:
        inputs["timestep"] = torch.full((2,), float(t))
        before = state.calls["radial"]
        run(model, inputs)
        seen.append((state.step, state.calls["radial"] - before))
    assert seen == [(s, m["layers"] if s >= 2 else 0) for s in steps]


def test_presets_give_the_defaults(family):
    m = MODELS[family]
    preset = ra.model_preset(m["preset"])
    state = radial.apply(m["transformer"]())
    s = state.settings
    assert (s.dense_layers, s.dense_timesteps, s.decay_factor) == (
        preset.dense_layers, preset.dense_timesteps, preset.decay_factor)
    state = radial.apply(m["transformer"](), model="hunyuan", decay_factor=0.3)
    assert state.settings.model == "hunyuan" and state.settings.decay_factor == 0.3


def test_pipeline_generation_writes_a_video(family, tmp_path, capsys):
    from radial_attention import generate

    m = MODELS[family]
    folder = tmp_path / f"tiny-{family}"
    m["pipeline"]().save_pretrained(str(folder))
    frames, height, width = m["video"]
    out = tmp_path / "video.mp4"
    generate.main(["--model", str(folder), "--frames", str(frames), "--height", str(height),
                   "--width", str(width), "--steps", "3", "--dense-steps", "1",
                   "--dense-layers", "0", "--block-size", "64", "--device", "cpu",
                   "--dtype", "fp32", "--output", str(out)])
    printed = capsys.readouterr().out
    # 3 steps x 2 layers x 2 guidance passes (one batch of 2 for each call): the first step
    # dense, the rest radial.
    layers = m["layers"]
    assert f"attention calls  radial {4 * layers // 2}, dense {2 * layers // 2}" in printed, printed
    written = out if out.exists() else tmp_path / "video_frames"
    assert written.exists() and (written.stat().st_size > 0 or any(written.iterdir()))
