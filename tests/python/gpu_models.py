"""Each model family's tiny random transformer and pipeline with the CUDA kernels (run from
gpu_checks.py; RADIAL_GPU_CHECKS_DEVICE=cpu dry-runs it on the CPU backend).

One TINY_MODELS entry per family (add yours): per family, the transformer saved with
save_pretrained and reloaded with from_pretrained in bf16: pattern="stock" equals stock
diffusers exactly; a dense plan through the radial kernel equals stock within bf16 tolerance;
the radial mask, at a geometry whose token count is not a multiple of the block, equals the
model run with the library's op replaced by dense attention under the plan's token mask;
then the tiny pipeline writes a video through radial_attention.generate for each pattern.
"""

import os
import sys
import tempfile

import torch

import tiny_models

BF16_TOL = 2e-2

# name: transformer(), inputs(**kw) at a geometry off the block (kw: device, dtype), the
# pipeline factory and a (frames, height, width) it generates.
TINY_MODELS = {
    "Mochi-1": dict(
        transformer=tiny_models.mochi_transformer,
        inputs=lambda **kw: tiny_models.mochi_inputs(frames=7, height=24, width=40, **kw),
        pipeline=tiny_models.mochi_pipeline, video=(13, 64, 96)),
    "LTX-Video": dict(
        transformer=tiny_models.ltx_transformer,
        inputs=lambda **kw: tiny_models.ltx_inputs(frames=7, height=12, width=20, **kw),
        pipeline=tiny_models.ltx_pipeline, video=(9, 64, 96)),
}


def _rel(a, b):
    return float((a.double() - b.double()).abs().max() / b.double().abs().max())


def _run(model, inputs):
    with torch.no_grad():
        return model(**inputs, return_dict=False)[0]


def _masked_reference(q, k, v, plan_key, **_options):  # e.g. precision=: the reference is exact
    from radial_attention.plan import get

    mask = get(plan_key).token_mask().to(q.device)
    out = torch.nn.functional.scaled_dot_product_attention(
        *(t.float().transpose(1, 2) for t in (q, k, v)), attn_mask=mask)
    return out.transpose(1, 2).to(q.dtype)


def transformer_checks(name, entry, work, device, check):
    import radial_attention.diffusers as radial
    from radial_attention.diffusers import _processor

    original = entry["transformer"]()
    folder = os.path.join(work, name)
    original.save_pretrained(folder)
    model = type(original).from_pretrained(folder, torch_dtype=torch.bfloat16).to(device).eval()
    inputs = entry["inputs"](device=device, dtype=torch.bfloat16)
    expected = _run(model, inputs)

    radial.apply(model, pattern="stock")
    check(f"{name}: pattern=stock equals stock exactly", torch.equal(_run(model, inputs), expected))
    radial.apply(model, pattern="dense", dense_layers=0, dense_timesteps=0, block_size=64)
    err = _rel(_run(model, inputs), expected)
    check(f"{name}: dense plan equals stock within bf16 tolerance", err < BF16_TOL,
          f"rel err {err:.2e}")
    state = radial.apply(model, dense_layers=1, dense_timesteps=0, block_size=64, decay_factor=0.5)
    got = _run(model, inputs)
    kernel = _processor.attention
    _processor.attention = _masked_reference
    try:
        masked = _run(model, inputs)
    finally:
        _processor.attention = kernel
    radial.remove(model)
    frames, tokens = state.geometry
    err = _rel(got, masked)
    check(f"{name}: radial equals dense attention under the plan's mask "
          f"({frames} x {tokens} tokens, {frames * tokens % 64} past the last whole block)",
          err < BF16_TOL and (frames * tokens) % 64 != 0, f"rel err {err:.2e}")
    print(f"  info {name}: real mask vs dense attention, rel difference {_rel(got, expected):.3e} "
          f"(calls {dict(state.calls)})", flush=True)


def generation_checks(name, entry, work, out_dir, device, check):
    """generate.main in this process (one diffusers import for every pattern and model)."""
    import contextlib
    import io

    from radial_attention import generate

    folder = os.path.join(work, name + "-pipeline")
    entry["pipeline"]().save_pretrained(folder)
    frames, height, width = entry["video"]
    slug = name.lower().replace(" ", "_").replace(".", "")
    for pattern in ("radial", "dense", "stock"):
        video = os.path.join(out_dir, f"tiny_{slug}_{pattern}.mp4")
        argv = ["--model", folder, "--frames", str(frames), "--height", str(height),
                "--width", str(width), "--steps", "2", "--dense-steps", "1", "--dense-layers",
                "0", "--block-size", "64", "--device", device, "--dtype", "bf16", "--pattern",
                pattern, "--output", video]
        printed = io.StringIO()
        try:
            with contextlib.redirect_stdout(printed):
                code = generate.main(argv)
        except Exception as e:  # noqa: BLE001
            code = f"{type(e).__name__}: {e}"
        lines = [line for line in printed.getvalue().splitlines() if line.strip()]
        print("\n".join("    " + line for line in lines[-4:]))
        written = video if os.path.exists(video) else os.path.splitext(video)[0] + "_frames"
        check(f"{name}: generate --pattern {pattern} writes {os.path.basename(written)}",
              code == 0 and os.path.exists(written), "" if code == 0 else str(code))


def run(out_dir, device, check, section, names=None):
    work = tempfile.mkdtemp()
    for name, entry in TINY_MODELS.items():
        if names is not None and name not in names:
            continue
        section(f"{name}: tiny transformer (saved, reloaded, bf16) and pipeline on {device}")
        transformer_checks(name, entry, work, device, check)
        generation_checks(name, entry, work, out_dir, device, check)


if __name__ == "__main__":  # python tests/python/gpu_models.py OUT_DIR [NAME ...]
    failures = []

    def _check(label, ok, detail=""):
        print(f"  {'ok  ' if ok else 'FAIL'} {label}{': ' + detail if detail else ''}", flush=True)
        if not ok:
            failures.append(label)

    out = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp()
    os.makedirs(out, exist_ok=True)
    run(out, os.environ.get("RADIAL_GPU_CHECKS_DEVICE", "cuda"), _check,
        lambda title: print(f"== {title}", flush=True), sys.argv[2:] or None)
    print(f"gpu_models: {'FAILED: ' + ', '.join(failures) if failures else 'all passed'}")
    sys.exit(1 if failures else 0)
