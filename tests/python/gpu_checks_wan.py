"""gpu_checks.py's part for Wan2.2-TI2V-5B, Wan VACE, SkyReels-V2 and HunyuanVideo-I2V: each
tiny transformer (wan_family_models.MODELS) saved, reloaded in bf16 on the device and run
stock / dense / radial against stock diffusers and against stock fed the plan's token mask;
then each tiny pipeline (wan_family_models.GENERATIONS) through radial_attention.generate.

Runs from gpu_checks.main; alone: python tests/python/gpu_checks_wan.py OUT_DIR
(RADIAL_GPU_CHECKS_DEVICE=cpu dry-runs it on the CPU backend).
"""

import contextlib
import io
import os
import pathlib
import sys
import tempfile

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import radial_attention as ra  # noqa: E402

_DTYPE_ARGS = ("hidden_states", "encoder_hidden_states", "control_hidden_states",
               "pooled_projections")


def _on(inputs, device, dtype):
    """Activations in dtype on the device; timesteps, masks and the rest only moved."""
    return {k: (v.to(device, dtype) if k in _DTYPE_ARGS else
                v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in inputs.items()}


def _masks(spec, state, valid):
    frames, tokens = state.geometry
    if not spec.text:
        return ra.plan(frames=frames, tokens_per_frame=tokens, model=state.settings.model,
                       decay_factor=0.5, block_size=64).token_mask()
    return torch.stack([
        ra.plan(frames=frames, tokens_per_frame=tokens, text_tokens=spec.text, text_valid=v,
                model=state.settings.model, decay_factor=0.5, block_size=64).token_mask()
        for v in valid])[:, None]


def _mask_matters(checks, name, spec, model, valid, device):
    """bf16 rounding moves these outputs by about as much as the mask does, so beside
    model_checks' bf16 tolerance: in fp16 (8x finer) and at a sparser geometry (13 frames of
    63 tokens, density 0.15), the radial output must sit much nearer the masked model than
    the dense one (a wrong mask would not)."""
    import radial_attention.diffusers as radial

    model = model.to(torch.float16)
    inputs = _on(spec.inputs(13, 14, 18, seed=2), device, torch.float16)
    dense = checks.stock(model, inputs)
    state = radial.apply(model, dense_layers=1, dense_timesteps=0, block_size=64, decay_factor=0.5)
    got = checks.stock(model, inputs)
    radial.remove(model)
    originals = [(a, a.processor) for _, a in spec.attentions(model)]
    mask = _masks(spec, state, valid).to(model.device)
    for layer, a in spec.attentions(model):
        if layer >= 1:
            a.set_processor(checks.MaskedStock(a.processor, mask))
    masked = checks.stock(model, inputs)
    for a, p in originals:
        a.set_processor(p)
    to_masked, to_dense = checks.rel(got, masked), checks.rel(got, dense)
    checks.check(f"{name}: radial is nearer the masked model than the dense one",
                 to_masked < 0.25 * to_dense, f"{to_masked:.2e} against {to_dense:.2e}")


def run(out_dir, device, checks):
    """checks: the gpu_checks module (check, model_checks, stock, rel, MaskedStock)."""
    import wan_family_models as family
    from radial_attention import generate

    check = checks.check
    work = pathlib.Path(tempfile.mkdtemp())
    # 9 latent frames of 10 x 12 (30 tokens per frame, 270 in all: off the 64-token block)
    for name, spec in family.MODELS.items():
        model, _ = checks.model_checks(
            name, str(work / name), spec.make,
            lambda device, dtype, spec=spec: _on(spec.inputs(9, 10, 12, seed=1), device, dtype),
            spec.attentions, lambda state, spec=spec: _masks(spec, state, family.VALID), device)
        _mask_matters(checks, name, spec, model, family.VALID, device)

    media = family.write_media(work)
    for name, (pipeline, flags, expected) in family.GENERATIONS.items():
        folder = work / f"pipeline-{pipeline}"
        if not folder.exists():
            getattr(family.tiny_models, pipeline)().save_pretrained(str(folder))
        video = os.path.join(out_dir, f"tiny_{name}.mp4")
        printed = io.StringIO()
        try:
            with family.tiny_hunyuan_template(), contextlib.redirect_stdout(printed):
                generate.main(["--model", str(folder), *flags.format(media=media).split(),
                               "--steps", "2", "--dense-steps", "1", "--dense-layers", "0",
                               "--block-size", "64", "--device", device, "--dtype", "bf16",
                               "--output", video])
            error = None
        except Exception as e:  # noqa: BLE001
            error = repr(e)
        lines = printed.getvalue().splitlines()
        print("\n".join("    " + line for line in lines[-7:]))
        written = video if os.path.exists(video) else os.path.splitext(video)[0] + "_frames"
        missing = [line for line in expected if line not in printed.getvalue()]
        check(f"generate {name} (bf16) writes {os.path.basename(written)}",
              error is None and os.path.exists(written) and not missing,
              error or (f"missing: {missing}" if missing else ""))


if __name__ == "__main__":
    import gpu_checks

    out = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp()
    os.makedirs(out, exist_ok=True)
    run(out, os.environ.get("RADIAL_GPU_CHECKS_DEVICE", "cuda"), gpu_checks)
    print("gpu_checks_wan: FAILED: " + ", ".join(gpu_checks.failures) if gpu_checks.failures
          else "gpu_checks_wan: all passed")
    sys.exit(1 if gpu_checks.failures else 0)
