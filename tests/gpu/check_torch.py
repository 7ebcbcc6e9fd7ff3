#!/usr/bin/env python3
"""The CUDA kernel against PyTorch SDPA in float32 (the plan's block mask expanded to a token
mask, keys past key_limit hidden) on fresh random inputs: both dtypes, head dims, block sizes,
layouts and kernel choices. Outputs and lse are NaN-poisoned first; every element must be
written, padding around strided outputs must stay untouched.

usage: check_torch.py BUILD_DIR      (exit status 1 if any case fails)
"""
import math
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench", "gpu"))
from radial_shim import Shim  # noqa: E402
from radial_attention import RadialError  # noqa: E402  (on sys.path through radial_shim)

TOL = {torch.bfloat16: 5e-3, torch.float16: 1e-3}
LSE_TOL = 1e-3

# name, model, frames, tokens/frame, text, text_valid, decay, block, dense, dtype, B, H, D,
# layout, scale, kernel choice ("": the public attention(); else the kernel named by its fields,
# docs/dispatch.md; family=hopper on compute capability 9.0 only). On an H100 the public
# attention() runs the Hopper kernel for bf16/f16, D 64/128, block 128.
BF, HF = torch.bfloat16, torch.float16
CASES = [
    ("wan_bf16_d128_b128_bhsd", "wan", 6, 1560, 0, -1, 1.0, 128, False, BF, 1, 2, 128, "bhsd", 0.0,
     ""),
    ("wan_bf16_d128_b128_8warps", "wan", 6, 1560, 0, -1, 0.2, 128, False, BF, 1, 2, 128, "bshd", 0.0,
     "family=portable,tile=eight_warps"),
    ("hunyuan_text_bf16_d128_b128_packed", "hunyuan", 5, 990, 256, 119, 0.95, 128, False, BF, 2, 2, 128, "packed", 0.0,
     ""),
    ("hunyuan_text_f16_d64_b64_bshd", "hunyuan", 4, 700, 100, 33, 0.95, 64, False, HF, 1, 3, 64, "bshd", 0.1,
     "family=portable"),
    ("wan_f16_d128_b64_bhsd", "wan", 5, 880, 0, -1, 1.0, 64, False, HF, 2, 1, 128, "bhsd", 0.0,
     "family=portable"),
    ("dense_bf16_d64_b128_odd", "wan", 1, 1001, 0, -1, 1.0, 128, True, BF, 1, 4, 64, "packed", 0.0,
     "family=portable"),
    ("wan_bf16_d64_b64_batch", "wan", 9, 256, 0, -1, 0.5, 64, False, BF, 3, 2, 64, "bshd", 0.0,
     "family=portable"),
    ("hunyuan_f16_d128_b128_8warps", "hunyuan", 7, 400, 64, 64, 0.95, 128, False, HF, 1, 2, 128, "bhsd", 0.0,
     "family=portable,tile=eight_warps"),
    ("wan_bf16_d128_b128_double_buffer", "wan", 6, 1560, 0, -1, 1.0, 128, False, BF, 1, 2, 128, "bhsd", 0.0,
     "family=portable,tile=double_buffer"),
    ("hunyuan_text_bf16_d128_b128_double_buffer", "hunyuan", 5, 990, 256, 119, 0.95, 128, False, BF, 1, 2, 128, "packed", 0.0,
     "family=portable,tile=double_buffer"),
    ("wan_bf16_d128_b128_natural_order", "wan", 6, 1560, 0, -1, 0.2, 128, False, BF, 1, 2, 128, "bshd", 0.0,
     "family=portable,row_order=natural"),
    ("hunyuan_text_bf16_d128_b128_locality", "hunyuan", 14, 600, 128, 77, 0.95, 128, False, BF, 1, 2, 128, "bhsd", 0.0,
     "family=portable,row_order=locality"),
    ("wan_f16_d128_b128_prefetch", "wan", 6, 1560, 0, -1, 1.0, 128, False, HF, 1, 2, 128, "bshd", 0.0,
     "family=portable,row_order=heavy_first,l2_prefetch=on"),
    ("wan_bf16_d128_b128_locality_prefetch", "wan", 16, 480, 0, -1, 1.0, 128, False, BF, 1, 2, 128, "bhsd", 0.0,
     "family=portable,l2_prefetch=on"),
    ("hunyuan_text_bf16_d64_b64_locality", "hunyuan", 12, 400, 64, 50, 0.95, 64, False, BF, 1, 2, 64, "packed", 0.0,
     "family=portable,row_order=locality"),
    ("hunyuan_text_bf16_d128_b128_heavy_first", "hunyuan", 5, 990, 256, 119, 0.95, 128, False, BF, 1, 2, 128, "bshd", 0.0,
     "family=portable,row_order=heavy_first"),
    ("hunyuan_text_f16_d128_b128_public", "hunyuan", 5, 990, 256, 119, 0.95, 128, False, HF, 1, 2, 128, "bhsd", 0.0,
     ""),
    ("wan_bf16_d64_b128_public", "wan", 6, 1560, 0, -1, 0.5, 128, False, BF, 2, 2, 64, "packed", 0.1,
     ""),
    ("hopper_hunyuan_text_f16_d64", "hunyuan", 5, 990, 256, 119, 0.95, 128, False, HF, 1, 2, 64, "bshd", 0.0,
     "family=hopper"),
    ("hopper_wan_bf16_d128_serial", "wan", 6, 1560, 0, -1, 0.2, 128, False, BF, 1, 2, 128, "bhsd", 0.0,
     "family=hopper,schedule=serial"),
    ("hopper_wan_bf16_d128_overlap", "wan", 16, 480, 0, -1, 1.0, 128, False, BF, 1, 2, 128, "bshd", 0.0,
     "family=hopper,schedule=overlap"),
    ("hopper_hunyuan_text_bf16_d128_pingpong", "hunyuan", 14, 600, 128, 77, 0.95, 128, False, BF, 1, 2, 128, "packed", 0.0,
     "family=hopper,schedule=pingpong"),
    ("hopper_dense_bf16_d128_persistent", "wan", 1, 1001, 0, -1, 1.0, 128, True, BF, 1, 4, 128, "bshd", 0.0,
     "family=hopper,persistent=on"),
    ("hopper_hunyuan_text_bf16_d128_q_registers", "hunyuan", 5, 990, 256, 119, 0.95, 128, False, BF, 1, 2, 128, "bshd", 0.0,
     "family=hopper,schedule=q_registers"),
    ("hopper_wan_bf16_d128_persistent_batch", "wan", 16, 480, 0, -1, 1.0, 128, False, BF, 2, 2, 128, "bhsd", 0.0,
     "family=hopper,persistent=on"),
]


def make_inputs(layout, B, S, H, D, dtype):
    if layout == "bshd":
        return [torch.randn(B, S, H, D, device="cuda").to(dtype) for _ in range(3)]
    if layout == "bhsd":
        return [torch.randn(B, H, S, D, device="cuda").to(dtype).transpose(1, 2) for _ in range(3)]
    qkv = torch.randn(B, S, 3, H, D, device="cuda").to(dtype)  # a fused projection
    return [qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]]


def run_case(shim, case):
    (name, model, frames, tpf, text, valid, decay, block, dense, dtype, B, H, D, layout, scale,
     choice) = case
    plan = shim.plan(model, frames, tpf, decay, block, text, valid, dense)
    S = plan.seq_len
    q, k, v = make_inputs(layout, B, S, H, D, dtype)
    # Output: [B, H, S, D + 8] storage, viewed as [B, S, H, D]; the pad must stay NaN.
    out_store = torch.full((B, H, S, D + 8), float("nan"), device="cuda", dtype=dtype)
    out = out_store[..., :D].transpose(1, 2)
    lse = torch.full((B, H, S), float("nan"), device="cuda", dtype=torch.float32)
    try:
        shim.attention(plan, q, k, v, out, lse, scale, choice)
    except RadialError as e:
        if "RADIAL_ABLATION_KERNELS" not in str(e):
            raise
        print(f"SKIP  {name:38s} {choice!r} is built for comparison only "
              "(RADIAL_ABLATION_KERNELS=ON)", flush=True)
        return None
    torch.cuda.synchronize()

    s = scale if scale > 0 else 1.0 / math.sqrt(D)
    mask = plan.token_mask()
    qf, kf, vf = (t.float().transpose(1, 2) for t in (q, k, v))  # [B, H, S, D]
    with torch.nn.attention.sdpa_kernel(torch.nn.attention.SDPBackend.MATH):
        ref = torch.nn.functional.scaled_dot_product_attention(qf, kf, vf, attn_mask=mask, scale=s)
    logits = (qf @ kf.transpose(-1, -2)) * s
    ref_lse = logits.masked_fill(~mask, float("-inf")).logsumexp(-1)

    got = out.float().transpose(1, 2)
    unwritten = int((~torch.isfinite(got)).sum())
    pad_touched = int((~torch.isnan(out_store[..., D:])).sum())
    bad_lse = int((~torch.isfinite(lse)).sum())
    rel = float((got - ref).norm() / ref.norm())
    lse_err = float((lse - ref_lse).abs().max())
    ok = (unwritten == 0 and pad_touched == 0 and bad_lse == 0 and rel < TOL[dtype]
          and lse_err < LSE_TOL)
    print(f"{'PASS' if ok else 'FAIL'}  {name:38s} seq {S:6d} key_limit {plan.key_limit:6d} "
          f"rel.err {rel:.2e} (< {TOL[dtype]:.0e})  lse err {lse_err:.1e}  unwritten {unwritten} "
          f"pad touched {pad_touched} bad lse {bad_lse}", flush=True)
    return ok


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.manual_seed(int.from_bytes(os.urandom(4), "little"))
    shim = Shim(sys.argv[1])
    hopper = torch.cuda.get_device_capability() == (9, 0)
    cases = [c for c in CASES if not c[-1].startswith("family=hopper") or hopper]
    if len(cases) < len(CASES):
        print(f"skipping {len(CASES) - len(cases)} Hopper-kernel cases: not compute capability 9.0")
    results = [run_case(shim, c) for c in cases]
    failed, skipped = results.count(False), results.count(None)
    print(f"check_torch: {results.count(True)} passed, {failed} failed, {skipped} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
