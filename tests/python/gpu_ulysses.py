"""Ulysses sequence parallelism on GPUs (run by scripts/gpu/ulysses under torchrun, one process
per GPU, NCCL; not collected by pytest). Any GPU count, one included:

  1. ulysses_attention over the group equals the attention of one GPU on the whole sequence
     (Wan-like and HunyuanVideo-like geometries with text padding, a head count the group
     does not divide, bf16), outputs and, where the op has a CUDA backward, gradients;
  2. the exchanges add no copy of their own: the bytes the caching allocator hands out
     during one ulysses_attention equal, to the byte, the buffers of the two exchanges
     (per q, k, v: a send and a receive buffer; for the output: a receive buffer and the
     caller's output; the kernel's own output is the second exchange's send buffer) plus
     what the plain attention allocates; and the time the exchanges add, against plain
     device copies of the same bytes;
  3. with two or more GPUs, tiny Wan and HunyuanVideo transformers under diffusers' context
     parallelism (enable_ulysses) equal one GPU's output.
Writes OUT_DIR/ulysses-<N>gpu.json (the measurements) and prints every check.

  torchrun --nproc-per-node N tests/python/gpu_ulysses.py OUT_DIR
  RADIAL_GPU_CHECKS_DEVICE=cpu: a dry run on CPUs over gloo with small sizes.
"""

import json
import os
import pathlib
import statistics
import sys
import time
import traceback

import torch
import torch.distributed as dist

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import radial_attention as ra  # noqa: E402
from radial_attention import parallel  # noqa: E402
from radial_attention.parallel._exchange import HeadsToSequence, SequenceToHeads  # noqa: E402

failures = []
RANK = 0


def say(text):
    if RANK == 0:
        print(text, flush=True)


def check(name, ok, detail=""):
    # Every rank checks; rank 0 prints, and a failure anywhere is printed by its rank.
    if RANK == 0 or not ok:
        print(f"  {'ok  ' if ok else 'FAIL'} [rank {RANK}] {name}{': ' + detail if detail else ''}",
              flush=True)
    if not ok:
        failures.append(name)


def rel(a, b):
    return float((a.double() - b.double()).abs().max() / b.double().abs().max())


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def local_inputs(full, video, world, rank):
    """This rank's shard of the video tokens (zero padding), then every text token."""
    shard = parallel.shard(full[:, :video])
    return torch.cat([shard, full[:, video:]], dim=1)


def equality_checks(device, world, rank, big):
    say("== ulysses_attention over the group vs one device on the whole sequence")
    cases = [
        ("wan", dict(frames=6, tokens_per_frame=256 if big else 40, model="wan",
                     decay_factor=0.5, block_size=128 if big else 64), 2 * world + 1),
        ("hunyuan+text", dict(frames=4, tokens_per_frame=300 if big else 33, model="hunyuan",
                              decay_factor=0.95, block_size=128 if big else 64, text_tokens=80 if big else 13,
                              text_valid=53 if big else 7), 24 if world <= 24 else world),
    ]
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    dim = 128 if big else 16
    backward_ok = True
    for name, spec, heads in cases:
        plan = ra.plan(**spec)
        video = spec["frames"] * spec["tokens_per_frame"]
        g = torch.Generator().manual_seed(1234)  # the same inputs on every rank
        full = [torch.randn(1, plan.seq_len, heads, dim, generator=g).to(dtype).to(device)
                for _ in range(4)]
        expected = ra.attention(*full[:3], plan)
        local = [local_inputs(t, video, world, rank) for t in full]
        got = parallel.ulysses_attention(*local[:3], plan)
        sync(device)
        real = parallel.padded_shard_sizes(video, world)[rank]
        start = sum(parallel.padded_shard_sizes(video, world)[:rank])
        L = got.shape[1] - plan.seq_len + video
        err_video = rel(got[:, :real], expected[:, start:start + real]) if real else 0.0
        err_text = rel(got[:, L:], expected[:, video:]) if plan.seq_len > video else 0.0
        same = bool(torch.equal(got[:, :real], expected[:, start:start + real]))
        limit = 1e-2 if dtype == torch.bfloat16 else 1e-6
        check(f"{name}: {plan.seq_len} tokens, {heads} heads over {world} ranks",
              err_video < limit and err_text < limit,
              f"rel err video {err_video:.1e}, text {err_text:.1e}, bit-identical {same}")
        if not backward_ok:
            continue
        leaves_full = [t.clone().requires_grad_() for t in full[:3]]
        try:
            ra.attention(*leaves_full, plan).backward(full[3])
        except (NotImplementedError, ra.RadialError, RuntimeError) as e:
            say(f"  skip gradients: no backward for this device in this build ({e})")
            backward_ok = False
            continue
        leaves = [t.clone().requires_grad_() for t in local[:3]]
        weight = local[3].clone()
        weight[:, real:L] = 0
        if rank != 0:
            weight[:, L:] = 0  # the text output is on every rank: count it once
        parallel.ulysses_attention(*leaves, plan).backward(weight)
        for tname, ref, leaf in zip("qkv", leaves_full, leaves):
            grad = leaf.grad.clone()
            text = grad[:, L:].contiguous()
            dist.all_reduce(text)
            err_v = rel(grad[:, :real], ref.grad[:, start:start + real]) if real else 0.0
            err_t = rel(text, ref.grad[:, video:]) if plan.seq_len > video else 0.0
            limit = 2e-2 if dtype == torch.bfloat16 else 1e-5
            check(f"{name}: d{tname}", err_v < limit and err_t < limit,
                  f"rel err video {err_v:.1e}, text {err_t:.1e}")


def timed(fn, device, repeat):
    times = []
    for _ in range(repeat):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def allocated(device):
    if device.type != "cuda":
        return 0
    return torch.cuda.memory_stats(device)["allocated_bytes.all.allocated"]


def measurement(device, world, rank, big, out_dir):
    say("== what the exchanges cost: bytes allocated and time, against plain device copies")
    if big:  # Wan2.1-14B, 81 frames 720p: 21 x 3600 tokens, 40 heads of 128
        spec, heads, dim = dict(frames=21, tokens_per_frame=3600, model="wan", decay_factor=0.2), 40, 128
    else:
        spec, heads, dim = dict(frames=4, tokens_per_frame=64, model="wan", block_size=64), 2 * world, 16
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    plan = ra.plan(**spec)
    S = plan.seq_len
    g = torch.Generator(device=device).manual_seed(5)
    L = -(-S // world)
    q, k, v = (torch.randn(1, L, heads, dim, generator=g, device=device, dtype=dtype)
               for _ in range(3))
    hp = -(-heads // world)
    layout = parallel._attention.make_layout(q, k, v, S, 0, None, None, "bshd")
    n = layout.real[rank]
    elem = q.element_size()

    def block(nbytes):  # the caching allocator hands out multiples of 512 bytes
        return -(-nbytes // 512) * 512

    head_rows = block(S * hp * dim * elem)          # [S, B, Hp, D]: a receive buffer
    shard_rows = block(world * n * hp * dim * elem)  # [P, n, B, Hp, D]: a send buffer / out's receive
    output = block(L * heads * dim * elem)           # the caller's [B, L, H, D]
    expected_extra = 3 * (shard_rows + head_rows) + shard_rows + output
    # The plain attention of this rank's heads over the whole sequence, for comparison.
    qh, kh, vh = (torch.randn(1, S, hp, dim, generator=g, device=device, dtype=dtype)
                  for _ in range(3))
    with torch.no_grad():
        for _ in range(2):  # warm-up (plan upload, NCCL communicators)
            parallel.ulysses_attention(q, k, v, plan)
            ra.attention(qh, kh, vh, plan)
        sync(device)
        before = allocated(device)
        ra.attention(qh, kh, vh, plan)
        sync(device)
        plain_bytes = allocated(device) - before
        before = allocated(device)
        parallel.ulysses_attention(q, k, v, plan)
        sync(device)
        ulysses_bytes = allocated(device) - before
        if device.type == "cuda":
            # Exact unless the allocator serves a cached block up to 1 MiB larger than asked
            # (it does not split those): allow that per buffer, far below any extra copy
            # (the smallest buffer here is this rank's shard).
            slack = 8 * 2**20
            check("bytes allocated: the exchanges' buffers and nothing more",
                  abs(ulysses_bytes - plain_bytes - expected_extra) <= slack
                  and slack < min(shard_rows, output),
                  f"difference {(ulysses_bytes - plain_bytes - expected_extra)} bytes from the expected; "
                  f"ulysses {ulysses_bytes / 2**20:.1f} MiB, plain attention {plain_bytes / 2**20:.1f} "
                  f"MiB, expected difference {expected_extra / 2**20:.1f} MiB "
                  f"(3 x (send {shard_rows / 2**20:.1f} + receive {head_rows / 2**20:.1f}) + "
                  f"output receive {shard_rows / 2**20:.1f} + output {output / 2**20:.1f})")
        repeat = 10 if big else 3
        t_ulysses = timed(lambda: parallel.ulysses_attention(q, k, v, plan), device, repeat)
        t_plain = timed(lambda: ra.attention(qh, kh, vh, plan), device, repeat)

        def exchanges():
            heads_q = [SequenceToHeads.apply(t, layout) for t in (q, k, v)]
            HeadsToSequence.apply(heads_q[0], layout)

        t_exchange = timed(exchanges, device, repeat)
        # The same bytes moved by plain copies: per q, k, v a pack and a receive (two copies
        # of this rank's shard), for the output a receive and an unpack (two more).
        src = torch.empty(L * heads * dim, device=device, dtype=dtype)
        dst = torch.empty_like(src)

        def copies():
            for _ in range(8):
                dst.copy_(src)

        t_copies = timed(copies, device, repeat)
    result = dict(world=world, rank=rank, device=str(torch.cuda.get_device_name(device))
                  if device.type == "cuda" else "cpu", tokens=S, heads=heads, head_dim=dim,
                  dtype=str(dtype), plain_attention_ms=t_plain * 1e3, ulysses_ms=t_ulysses * 1e3,
                  exchanges_ms=t_exchange * 1e3, eight_plain_copies_ms=t_copies * 1e3,
                  ulysses_bytes=ulysses_bytes, plain_bytes=plain_bytes,
                  expected_extra_bytes=expected_extra)
    say(f"  {S} tokens, {heads} heads x {dim}, {world} ranks: attention {t_plain * 1e3:.2f} ms, "
        f"ulysses_attention {t_ulysses * 1e3:.2f} ms, the exchanges alone {t_exchange * 1e3:.2f} ms, "
        f"8 plain copies of the shard {t_copies * 1e3:.2f} ms")
    if world == 1 and device.type == "cuda":
        # One process: NCCL's all-to-all is a device copy (in NCCL's own kernel, which may
        # not reach copy_'s bandwidth), so the exchanges are about 8 copies; a ninth or tenth
        # copy of the shard would show as well past that.
        check("exchange time near 8 plain copies of the same bytes (bound 3x)",
              t_exchange <= 3 * t_copies, f"{t_exchange / t_copies:.2f}x")
    results = [None] * world
    dist.all_gather_object(results, result)
    if rank == 0 and out_dir:
        path = os.path.join(out_dir, f"ulysses-{world}{'gpu' if device.type == 'cuda' else 'cpu'}.json")
        with open(path, "w") as f:
            json.dump(results, f, indent=1)
        say(f"  wrote {path}")


def model_checks(device, world, rank):
    if world < 2:
        say("== diffusers context parallelism: needs 2 or more GPUs (diffusers refuses degree 1)")
        return
    say("== tiny Wan and HunyuanVideo under enable_ulysses vs one device")
    import radial_attention.diffusers as radial
    import tiny_models

    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    for name, make, inputs in (
            ("Wan", lambda: tiny_models.wan_transformer(heads=world),
             lambda: tiny_models.wan_inputs(frames=4 * world, device=device, dtype=dtype)),
            ("HunyuanVideo", lambda: tiny_models.hunyuan_transformer(heads=world),
             lambda: tiny_models.hunyuan_inputs(frames=4 * world, device=device, dtype=dtype))):
        outs = []
        for parallel_run in (False, True):
            model = make().to(device, dtype)
            state = radial.apply(model, dense_layers=1, dense_timesteps=0, block_size=64)
            if parallel_run:
                parallel.enable_ulysses(model)
            with torch.no_grad():
                outs.append(model(**inputs(), return_dict=False)[0].float())
            calls = dict(state.calls)
        err = rel(outs[1], outs[0])
        limit = 2e-2 if dtype == torch.bfloat16 else 1e-5
        check(f"{name}: {world} ranks vs one device", err < limit, f"rel err {err:.1e}, calls {calls}")


def main():
    global RANK
    out_dir = sys.argv[1] if len(sys.argv) > 1 else ""
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
    want = os.environ.get("RADIAL_GPU_CHECKS_DEVICE", "cuda")
    if want == "cuda" and not (torch.cuda.is_available() and ra.cuda_available()):
        print(f"gpu_ulysses: no CUDA (torch {torch.cuda.is_available()}, library built with "
              f"CUDA {ra.built_with_cuda()})")
        return 1
    world = int(os.environ.get("WORLD_SIZE", "1"))
    ranks = parallel.init_from_torchrun(world, device=want)
    RANK = ranks.rank
    device = ranks.device
    say(f"torch {torch.__version__}, {ranks.world} ranks over {ranks.backend}, "
        f"{torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}")
    with parallel.stop_on_error(ranks.rank):
        for section in (lambda: equality_checks(device, world, RANK, device.type == "cuda"),
                        lambda: measurement(device, world, RANK, device.type == "cuda", out_dir),
                        lambda: model_checks(device, world, RANK)):
            try:
                section()
            except Exception:  # noqa: BLE001
                if world > 1:  # the other ranks may be inside a collective: stop them all
                    raise
                traceback.print_exc()  # one process: report and go on with the next section
                failures.append("exception")
    dist.destroy_process_group()
    if failures:
        print(f"gpu_ulysses [rank {RANK}]: FAILED: {failures}")
        return 1
    say("gpu_ulysses: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
