"""The Python package on a GPU (run by scripts/gpu/test_python; not collected by pytest).

Checks, each printing its numbers and failing loudly:
  1. the op on CUDA (bf16/f16, head dims 64/128, both layouts, text padding) against the
     float64 reference of the expanded mask, outputs poisoned with NaN first; opcheck;
  2. tiny random Wan and HunyuanVideo transformers, saved with save_pretrained and reloaded
     with from_pretrained (bf16): pattern="stock" equals stock diffusers exactly; a dense plan
     through the radial kernel equals stock within bf16 tolerance; the real mask equals the
     stock processor fed the plan's token mask, and its distance from dense is reported;
  3. torch.compile(fullgraph=True) of the radial Wan transformer runs and matches eager;
  4. a tiny Wan pipeline generates a video through python -m radial_attention.generate;
  5. the backward on CUDA: dq, dk, dv through autograd against float64 autograd of the
     reference (gradients poisoned with NaN first); opcheck with the autograd tests; a
     compiled training step; a tiny Wan transformer training with gradient checkpointing
     against the stock model given the plan's token mask.
  5b. gpu_models.py: Mochi-1, LTX-Video (and the other families in its table): the same
     transformer checks and their pipelines writing videos;
  5c. tiny Wan2.2-TI2V-5B, Wan VACE, SkyReels-V2 and HunyuanVideo-I2V transformers as in 2,
     and their pipelines through radial_attention.generate (gpu_checks_wan.py);
  6. radial-train on the GPU: prepare (synthetic MP4s) -> fit (bf16 weights, radial, 20 steps)
     lowers the loss, the LoRA reloads into a fresh pipeline and reproduces the trained model.
  7. precision="fp8" (H100/H200): a tiny Wan pipeline's frames with the radial layers in fp8
     against bf16 (the difference printed).
Usage: python tests/python/gpu_checks.py OUT_DIR
"""

import os
import pathlib
import subprocess
import sys
import tempfile
import time
import traceback

import torch

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import radial_attention as ra  # noqa: E402
import radial_attention.ops as ops  # noqa: E402
import reference  # noqa: E402

BF16_TOL = 2e-2  # whole tiny transformer in bf16, relative to the output's largest value
failures = []


def check(name, ok, detail=""):
    print(f"  {'ok  ' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}", flush=True)
    if not ok:
        failures.append(name)


def rel(a, b):
    return float((a.double() - b.double()).abs().max() / b.double().abs().max())


def section(title):
    print(f"== {title}", flush=True)


def op_checks(device):
    section("op on CUDA vs float64 reference (outputs poisoned with NaN)")
    ops._new_output = lambda shape, dtype, dev: torch.full(shape, float("nan"), dtype=dtype, device=dev)
    cases = [
        dict(frames=6, tokens_per_frame=256, model="wan", decay_factor=0.5, block_size=128),
        dict(frames=5, tokens_per_frame=200, model="wan", decay_factor=0.2, block_size=64),
        dict(frames=4, tokens_per_frame=300, model="hunyuan", decay_factor=0.95, block_size=128,
             text_tokens=80, text_valid=53),
    ]
    g = torch.Generator().manual_seed(int.from_bytes(os.urandom(4), "little"))
    for spec in cases:
        plan = ra.plan(**spec)
        mask = reference.token_mask(plan)
        for dtype in (torch.bfloat16, torch.float16):
            for dim in (64, 128):
                for layout in ("bshd", "bhsd"):
                    shape = (2, plan.seq_len, 3, dim)
                    q, k, v = (torch.randn(shape, generator=g).to(dtype) for _ in range(3))
                    args = [t.to(device) for t in (q, k, v)]
                    if layout == "bhsd":
                        args = [t.transpose(1, 2).contiguous() for t in args]
                    out, lse = ra.attention(*args, plan, layout=layout, return_lse=True)
                    torch.cuda.synchronize()
                    if layout == "bhsd":
                        out = out.transpose(1, 2)
                    expected, expected_lse = reference.attention(q, k, v, mask)
                    err = rel(out.cpu(), expected)
                    lse_err = float((lse.cpu().double() - expected_lse).abs().max())
                    finite = bool(torch.isfinite(out).all() and torch.isfinite(lse).all())
                    limit = 1e-2 if dtype == torch.bfloat16 else 2e-3
                    check(f"{spec['model']} F{spec['frames']} T{spec['tokens_per_frame']} "
                          f"b{spec['block_size']} {str(dtype)[6:]} d{dim} {layout}",
                          finite and err < limit and lse_err < 1e-2,
                          f"rel err {err:.2e}, lse err {lse_err:.2e}")
    ops._new_output = lambda shape, dtype, dev: torch.empty(shape, dtype=dtype, device=dev)

    plan = ra.plan(frames=3, tokens_per_frame=128, block_size=64, text_tokens=20, text_valid=11,
                   model="hunyuan")
    q, k, v = (torch.randn(1, plan.seq_len, 2, 64, device=device, dtype=torch.bfloat16)
               for _ in range(3))
    geometry, spec, decay = plan.key.op_args()
    try:
        torch.library.opcheck(torch.ops.radial_attention.attention.default,
                              (q, k, v, geometry, spec, decay, 0.0, False, True))
        check("opcheck (cuda, bf16)", True)
    except Exception as e:  # noqa: BLE001
        check("opcheck (cuda, bf16)", False, repr(e))
    try:
        ra.attention(q.float(), k.float(), v.float(), plan)
        check("float32 on CUDA is refused clearly", False, "no error")
    except ra.RadialError as e:
        check("float32 on CUDA is refused clearly", "q" in e.argument, str(e))


def backward_checks(device):
    section("backward on CUDA vs float64 autograd of the reference (gradients poisoned with NaN)")
    ops._new_output = lambda shape, dtype, dev: torch.full(shape, float("nan"), dtype=dtype, device=dev)
    cases = [
        dict(frames=6, tokens_per_frame=256, model="wan", decay_factor=0.5, block_size=128),
        dict(frames=5, tokens_per_frame=200, model="wan", decay_factor=0.2, block_size=64),
        dict(frames=4, tokens_per_frame=300, model="hunyuan", decay_factor=0.95, block_size=128,
             text_tokens=80, text_valid=53),
    ]
    g = torch.Generator().manual_seed(int.from_bytes(os.urandom(4), "little"))
    for spec in cases:
        plan = ra.plan(**spec)
        mask = reference.token_mask(plan)
        for dtype in (torch.bfloat16, torch.float16):
            for dim in (64, 128):
                for layout in ("bshd", "bhsd"):
                    shape = (2, plan.seq_len, 3, dim)
                    q, k, v, d_out = (torch.randn(shape, generator=g).to(dtype) for _ in range(4))
                    args = [t.to(device) for t in (q, k, v, d_out)]
                    if layout == "bhsd":
                        args = [t.transpose(1, 2).contiguous() for t in args]
                    leaves = [t.requires_grad_(True) for t in args[:3]]
                    ra.attention(*leaves, plan, layout=layout).backward(args[3])
                    grads = [t.grad.transpose(1, 2) if layout == "bhsd" else t.grad for t in leaves]
                    q64, k64, v64 = (t.double().requires_grad_(True) for t in (q, k, v))
                    out64, _ = reference.attention(q64, k64, v64, mask)
                    expected = torch.autograd.grad(out64, (q64, k64, v64), d_out.double())
                    errs = [rel(a.cpu(), b) for a, b in zip(grads, expected)]
                    finite = all(bool(torch.isfinite(a).all()) for a in grads)
                    limit = 1e-2 if dtype == torch.bfloat16 else 3e-3
                    check(f"backward {spec['model']} F{spec['frames']} T{spec['tokens_per_frame']} "
                          f"b{spec['block_size']} {str(dtype)[6:]} d{dim} {layout}",
                          finite and max(errs) < limit,
                          "rel err dq {:.2e} dk {:.2e} dv {:.2e}".format(*errs))
    ops._new_output = lambda shape, dtype, dev: torch.empty(shape, dtype=dtype, device=dev)

    plan = ra.plan(frames=3, tokens_per_frame=128, block_size=64, text_tokens=20, text_valid=11,
                   model="hunyuan")
    q, k, v = (torch.randn(1, plan.seq_len, 2, 64, device=device, dtype=torch.bfloat16,
                           requires_grad=True) for _ in range(3))
    geometry, spec, decay = plan.key.op_args()
    try:
        torch.library.opcheck(torch.ops.radial_attention.attention.default,
                              (q, k, v, geometry, spec, decay, 0.0, False, True))
        check("opcheck with autograd (cuda, bf16)", True)
    except Exception as e:  # noqa: BLE001
        check("opcheck with autograd (cuda, bf16)", False, repr(e))

    # torch.use_deterministic_algorithms(True) reaches the library: bit-identical gradients.
    d_out = torch.randn(q.shape, device=device, dtype=torch.bfloat16)
    runs = []
    torch.use_deterministic_algorithms(True)
    try:
        for _ in range(2):
            for t in (q, k, v):
                t.grad = None
            ra.attention(q, k, v, plan).backward(d_out)
            runs.append([t.grad.clone() for t in (q, k, v)])
    finally:
        torch.use_deterministic_algorithms(False)
    check("deterministic backward is bit-identical across two runs",
          all(torch.equal(a, b) for a, b in zip(*runs)))

    # A compiled training step: projections, radial attention, a loss, its backward.
    w = (torch.randn(128, 3 * 128, generator=g) / 12).to(device, torch.bfloat16).requires_grad_(True)
    x = torch.randn(2, plan.seq_len, 128, generator=g).to(device, torch.bfloat16)

    def loss_fn(x, w):
        q, k, v = (x @ w).unflatten(-1, (3, 2, 64)).unbind(2)
        return ra.attention(q, k, v, plan).float().square().mean()

    loss_fn(x, w).backward()
    eager = w.grad.clone()
    w.grad = None
    torch._dynamo.reset()
    try:
        torch.compile(loss_fn, fullgraph=True)(x, w).backward()
        err = rel(w.grad.float(), eager.float())
        check("compiled training step matches eager", err < BF16_TOL, f"rel err {err:.2e}")
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        check("compiled training step matches eager", False, "compile failed")


def training_check(device):
    """Tiny Wan (bf16) in training mode with gradient checkpointing: parameter gradients of the
    radial model against the stock model given the plan's token mask."""
    import radial_attention.diffusers as radial
    import tiny_models

    section("Wan training with gradient checkpointing vs masked stock (bf16)")
    model = tiny_models.wan_transformer().to(device, torch.bfloat16).train()
    model.enable_gradient_checkpointing()
    inputs = tiny_models.wan_inputs(frames=6, height=32, width=32, device=device, dtype=torch.bfloat16)

    def grads():
        model.zero_grad(set_to_none=True)
        out = model(**inputs, return_dict=False)[0]
        out.float().square().mean().backward()
        return {n: p.grad.float().clone() for n, p in model.named_parameters() if p.grad is not None}

    state = radial.apply(model, dense_layers=1, dense_timesteps=0, block_size=64, decay_factor=0.5)
    got = grads()
    radial.remove(model)
    f, t = state.geometry
    mask = ra.plan(frames=f, tokens_per_frame=t, model="wan", decay_factor=0.5,
                   block_size=64).token_mask().to(device)
    attentions = [b.attn1 for b in model.blocks]
    originals = [a.processor for a in attentions]
    for a in attentions[1:]:
        a.set_processor(MaskedStock(a.processor, mask))
    expected = grads()
    for a, p in zip(attentions, originals):
        a.set_processor(p)
    floor = 1e-3 * max(float(g.abs().max()) for g in expected.values())
    err = max(float((got[n] - expected[n]).abs().max()) / max(float(expected[n].abs().max()), floor)
              for n in expected)
    finite = all(bool(torch.isfinite(g).all()) for g in got.values())
    check("Wan parameter gradients equal masked stock", finite and err < 5e-2,
          f"worst rel err {err:.2e} over {len(expected)} parameters (bf16 end to end)")


def stock(model, inputs):
    with torch.no_grad():
        return model(**inputs, return_dict=False)[0]


class MaskedStock:
    def __init__(self, stock_processor, mask):
        self.stock, self.mask = stock_processor, mask

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None,
                 rotary_emb=None, image_rotary_emb=None):
        if image_rotary_emb is not None:
            return self.stock(attn, hidden_states, encoder_hidden_states, self.mask, image_rotary_emb)
        return self.stock(attn, hidden_states, encoder_hidden_states, self.mask, rotary_emb)


def model_checks(name, model_dir, make_model, make_inputs, attentions_of, masks_for, device):
    import radial_attention.diffusers as radial

    section(f"{name}: saved, reloaded, dense / full / radial against stock diffusers")
    original = make_model()
    original.save_pretrained(model_dir)
    cls = type(original)
    model = cls.from_pretrained(model_dir, torch_dtype=torch.bfloat16).to(device).eval()
    inputs = make_inputs(device=device, dtype=torch.bfloat16)
    expected = stock(model, inputs)

    radial.apply(model, pattern="stock")
    check(f"{name}: pattern=stock equals stock exactly", torch.equal(stock(model, inputs), expected))

    radial.apply(model, pattern="dense", dense_layers=0, dense_timesteps=0, block_size=64)
    err = rel(stock(model, inputs), expected)
    check(f"{name}: dense plan equals stock within bf16 tolerance", err < BF16_TOL, f"rel err {err:.2e}")

    state = radial.apply(model, dense_layers=1, dense_timesteps=0, block_size=64, decay_factor=0.5)
    got = stock(model, inputs)
    radial.remove(model)
    masks = masks_for(state)
    attentions = attentions_of(model)
    originals = [(a, a.processor) for _, a in attentions]
    for (layer, a) in attentions:
        if layer >= 1:
            a.set_processor(MaskedStock(a.processor, masks.to(device)))
    masked = stock(model, inputs)
    for a, p in originals:
        a.set_processor(p)
    err_masked = rel(got, masked)
    err_dense = rel(got, expected)
    check(f"{name}: radial equals stock fed the plan's mask", err_masked < BF16_TOL,
          f"rel err {err_masked:.2e}")
    print(f"  info {name}: real mask vs dense attention, rel difference {err_dense:.3e} "
          f"(geometry {state.geometry}, calls {dict(state.calls)})", flush=True)
    return model, inputs


def mask_matters_checks(device):
    """model_checks' bf16 tolerance (2e-2) would pass a wrong mask: on these tiny models bf16
    rounding moves the output about as much as the mask does (H200 logs: radial 6.3e-3 from
    both the masked and the dense model). So, as gpu_checks_wan does for the newer families:
    in fp16 at a sparser geometry, radial must sit much nearer the masked model than the dense
    one."""
    import gpu_checks_wan
    import tiny_models
    import wan_family_models as family

    section("Wan, HunyuanVideo: the mask matters (fp16, 13 frames of 63 tokens)")
    this = sys.modules[__name__]
    specs = {
        "Wan": family.Model(tiny_models.wan_transformer,
                            lambda f, h, w, seed: tiny_models.wan_inputs(
                                frames=f, height=h, width=w, seed=seed),
                            family.wan_attentions, "wan", "wan"),
        "HunyuanVideo": family.Model(tiny_models.hunyuan_transformer,
                                     lambda f, h, w, seed: tiny_models.hunyuan_inputs(
                                         frames=f, height=h, width=w, valid=family.VALID,
                                         seed=seed),
                                     family.hunyuan_attentions, "hunyuan", "hunyuan", text=12),
    }
    for name, spec in specs.items():
        model = spec.make().to(device).eval()
        gpu_checks_wan._mask_matters(this, name, spec, model, family.VALID, device)


def compile_checks(model, inputs, device):
    import radial_attention.diffusers as radial

    section("torch.compile(fullgraph=True), radial Wan transformer")
    radial.apply(model, dense_layers=1, dense_timesteps=0, block_size=64, decay_factor=0.5)
    eager = stock(model, inputs)
    torch._dynamo.reset()
    start = time.perf_counter()
    try:
        compiled = torch.compile(model, fullgraph=True)
        with torch.no_grad():
            got = compiled(**inputs, return_dict=False)[0]
        err = rel(got, eager)
        check("compiled matches eager", err < BF16_TOL,
              f"rel err {err:.2e}, compile + run {time.perf_counter() - start:.1f} s")
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        check("compiled matches eager", False, "compile failed")
    radial.remove(model)


def generation_check(out_dir, device):
    import tiny_models

    section("generation with a tiny Wan pipeline (python -m radial_attention.generate)")
    folder = os.path.join(tempfile.mkdtemp(), "tiny-wan")
    tiny_models.wan_pipeline().save_pretrained(folder)
    for pattern in ("radial", "dense", "stock"):
        video = os.path.join(out_dir, f"tiny_wan_{pattern}.mp4")
        cmd = [sys.executable, "-m", "radial_attention.generate", "--model", folder,
               "--frames", "17", "--height", "128", "--width", "128", "--steps", "4",
               "--dense-steps", "1", "--dense-layers", "0", "--block-size", "64",
               "--device", device, "--dtype", "bf16", "--pattern", pattern, "--output", video]
        run = subprocess.run(cmd, capture_output=True, text=True)
        lines = [l for l in run.stdout.splitlines() if l.strip()]
        print("\n".join("    " + l for l in lines[-6:]))
        written = video if os.path.exists(video) else os.path.splitext(video)[0] + "_frames"
        ok = run.returncode == 0 and os.path.exists(written)
        if not ok:
            print(run.stderr[-3000:])
        check(f"generate --pattern {pattern} writes {os.path.basename(written)}", ok)


def fp8_check(device):
    """precision="fp8" (issue 14) on H100/H200: a tiny Wan pipeline (head dim 64, block 128) makes
    the same video with the radial layers in fp8 as in bf16, within a few percent."""
    import tiny_models
    import radial_attention.diffusers as radial

    section("FP8 forward: a tiny Wan pipeline's frames, fp8 against bf16 (radial layers)")
    if device != "cuda" or torch.cuda.get_device_capability() != (9, 0):
        print("  skipped: fp8 runs on compute capability 9.0")
        return
    pipe = tiny_models.wan_pipeline().to(device, torch.bfloat16)
    frames = {}
    for precision in ("native", "fp8"):
        radial.apply(pipe, dense_layers=0, dense_timesteps=1, block_size=128, decay_factor=0.5,
                     precision=precision)
        g = torch.Generator(device).manual_seed(0)
        with torch.no_grad():
            frames[precision] = pipe(prompt="a cat", num_frames=33, height=128, width=128,
                                     num_inference_steps=4, generator=g, output_type="pt").frames
        radial.remove(pipe)
    fp8, native = (frames[p].float() for p in ("fp8", "native"))
    l2 = float((fp8 - native).norm() / native.norm())
    check("fp8 frames close to bf16 (rel. L2 < 3e-2)", bool(torch.isfinite(fp8).all()) and l2 < 3e-2,
          f"rel. L2 {l2:.2e}, max |diff| {float((fp8 - native).abs().max()):.3f}, mean "
          f"|diff| {float((fp8 - native).abs().mean()):.4f} (pixels in [0, 1])")


def radial_train_check(device):
    import numpy as np

    from radial_attention._video import backend, write_video

    import tiny_models
    from radial_attention.train import FitConfig, fit, prepare

    section(f"radial-train: prepare -> fit (bf16, radial) -> LoRA reload (videos by {backend()})")
    work = tempfile.mkdtemp()
    tiny_models.wan_pipeline().save_pretrained(os.path.join(work, "wan"))
    data = os.path.join(work, "videos")
    os.makedirs(data)
    yy, xx = np.mgrid[0:128, 0:128].astype(np.float64)
    for i, caption in enumerate(("a cat walks on the grass", "a dog runs in snow")):
        # imageio-ffmpeg where installed, else OpenCV (the lent GPU machines have only cv2).
        write_video([np.stack([127 + 100 * np.sin((xx * (i + 1) + 3 * f) / 17),
                               127 + 100 * np.cos((yy - 2 * f) / 13),
                               127 + 100 * np.sin((xx + yy) / 23 + f / 5)], -1).astype(np.uint8)
                     for f in range(17)], os.path.join(data, f"{i}.mp4"), 8)
        with open(os.path.join(data, f"{i}.txt"), "w") as f:
            f.write(caption)
    prepare(data, os.path.join(work, "wan"), os.path.join(work, "cache"), frames=[17],
            resolutions=[(128, 128)], device=device, progress=False)
    result = fit(FitConfig(model=os.path.join(work, "wan"), cache=os.path.join(work, "cache"),
                           output=os.path.join(work, "out"), rank=8, dtype="bf16", device=device,
                           learning_rate=3e-3, max_steps=20, dense_layers=1, block_size=64,
                           decay_factor=0.5, checkpoint_every=10, progress=False))
    losses = result["losses"]
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    check("fit: radial attention ran in training", result["attention_calls"].get("radial", 0) == 40,
          str(result["attention_calls"]))
    check("fit: loss falls (mean of the last 5 steps < 0.9 x the first 5)",
          all(map(np.isfinite, losses)) and last < 0.9 * first, f"{first:.4f} -> {last:.4f}")
    from diffusers import WanPipeline

    inputs = tiny_models.wan_inputs(channels=16, text=9, text_dim=32, seed=3, device=device,
                                    dtype=torch.bfloat16)
    with torch.no_grad():
        expected = result["transformer"](**inputs).sample
    pipe = WanPipeline.from_pretrained(os.path.join(work, "wan"), torch_dtype=torch.bfloat16).to(device)
    pipe.load_lora_weights(str(result["lora"]))
    with torch.no_grad():
        got = pipe.transformer(**inputs).sample
    err = rel(got, expected)
    check("the saved LoRA reloads and reproduces the trained transformer (bf16)", err < BF16_TOL,
          f"rel {err:.2e}")


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp()
    os.makedirs(out_dir, exist_ok=True)
    # RADIAL_GPU_CHECKS_DEVICE=cpu dry-runs the model, compile and generation checks on the
    # CPU backend (to try this script on a machine without a GPU).
    device = os.environ.get("RADIAL_GPU_CHECKS_DEVICE", "cuda")
    if device == "cuda":
        if not torch.cuda.is_available() or not ra.cuda_available():
            print(f"gpu_checks: no CUDA (torch {torch.cuda.is_available()}, "
                  f"library built with CUDA {ra.built_with_cuda()})")
            return 1
        print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}, radial_attention "
              f"from {os.path.dirname(ra.__file__)}", flush=True)
        op_checks(device)
        backward_checks(device)
    try:
        import diffusers

        import tiny_models
    except ImportError as e:
        print(f"gpu_checks: diffusers missing ({e}); carry its wheels (scripts/gpu/fetch_wheels)")
        return 1
    print(f"diffusers {diffusers.__version__}")
    work = tempfile.mkdtemp()

    def wan_masks(state):
        f, t = state.geometry
        return ra.plan(frames=f, tokens_per_frame=t, model="wan", decay_factor=0.5,
                       block_size=64).token_mask()

    def hunyuan_masks(state):
        f, t = state.geometry
        return torch.stack([
            ra.plan(frames=f, tokens_per_frame=t, text_tokens=12, text_valid=v, model="hunyuan",
                    decay_factor=0.5, block_size=64).token_mask() for v in (9, 5)])[:, None]

    wan, wan_inputs = model_checks(
        "Wan", os.path.join(work, "wan"), tiny_models.wan_transformer,
        lambda **kw: tiny_models.wan_inputs(frames=6, height=32, width=32, **kw),
        lambda m: [(i, b.attn1) for i, b in enumerate(m.blocks)], wan_masks, device)
    model_checks(
        "HunyuanVideo", os.path.join(work, "hunyuan"), tiny_models.hunyuan_transformer,
        lambda **kw: tiny_models.hunyuan_inputs(frames=6, height=32, width=32, valid=(9, 5), **kw),
        lambda m: [(i, b.attn) for i, b in enumerate(list(m.transformer_blocks)
                                                      + list(m.single_transformer_blocks))],
        hunyuan_masks, device)
    mask_matters_checks(device)
    compile_checks(wan, wan_inputs, device)
    training_check(device)
    generation_check(out_dir, device)
    fp8_check(device)
    import gpu_models  # every other model family's tiny transformer and pipeline

    gpu_models.run(out_dir, device, check, section)
    import gpu_checks_wan  # Wan2.2-TI2V-5B, Wan VACE, SkyReels-V2, HunyuanVideo-I2V

    gpu_checks_wan.run(out_dir, device, sys.modules[__name__])
    radial_train_check(device)

    if failures:
        print(f"gpu_checks: FAILED: {', '.join(failures)}")
        return 1
    print("gpu_checks: all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
