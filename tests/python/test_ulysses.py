"""Ulysses attention (radial_attention.parallel) on 2 and 4 CPU processes over gloo equals
the attention of one process: outputs and gradients, over geometries with a tail block,
sequences that do not divide by the group, text tokens with padding, head counts that do not
divide, both layouts, float32 and bfloat16. Padding rows are NaN on the way in, so a padding
token that reached the kernel would show."""

import pytest
import torch

import distributed
import reference

pytest.importorskip("torch.distributed")

WORLDS = (2, 4)


def cases(world):
    """(name, plan kwargs, batch, heads, layout, dtype, uneven shards). Heads world + 1 and
    2 * world - 1 do not divide by the group; 111 and 99 tokens do not divide by 2 or 4."""
    return [
        ("wan-even", dict(frames=4, tokens_per_frame=32), 1, 2 * world, "bshd", torch.float32, False),
        ("wan-tail", dict(frames=3, tokens_per_frame=37), 2, world + 1, "bshd", torch.float32, False),
        ("wan-split", dict(frames=2, tokens_per_frame=55), 1, 2 * world - 1, "bshd", torch.float32, True),
        ("hunyuan-text", dict(frames=3, tokens_per_frame=33, text_tokens=13, text_valid=7,
                              model="hunyuan"), 2, world + 1, "bhsd", torch.float32, False),
        ("hunyuan-bf16", dict(frames=2, tokens_per_frame=41, text_tokens=9, text_valid=9,
                              model="hunyuan"), 1, world, "bshd", torch.bfloat16, False),
        ("fewer-tokens-than-ranks", dict(frames=1, tokens_per_frame=3, text_tokens=2,
                                         text_valid=1, model="hunyuan"), 1, world, "bshd",
         torch.float32, False),
    ]


def _local(full, video, world, rank, sizes, layout):
    """This rank's input: its video shard (padding rows NaN) followed by all the text."""
    from radial_attention import parallel

    seq_dim = 2 if layout == "bhsd" else 1
    shard = parallel.shard(full.narrow(seq_dim, 0, video), dim=seq_dim, shard_sizes=sizes).clone()
    real = (sizes or parallel.padded_shard_sizes(video, world))[rank]
    shard.narrow(seq_dim, real, shard.shape[seq_dim] - real).fill_(float("nan"))
    text = full.narrow(seq_dim, video, full.shape[seq_dim] - video)
    return torch.cat([shard, text], dim=seq_dim), real


def _rows(full, start, count, layout):
    return full.narrow(2 if layout == "bhsd" else 1, start, count)


def attention_worker(rank, world, seed, with_grad, attend_kind):
    """Every case on this rank: the largest errors of the ulysses output (and gradients)
    against one process's, and what the padding rows hold."""
    import torch.distributed as dist

    import radial_attention as ra
    from radial_attention import parallel

    found = {}
    for name, kwargs, batch, heads, layout, dtype, uneven in cases(world):
        plan = ra.plan(block_size=64, **kwargs)
        video = kwargs["frames"] * kwargs["tokens_per_frame"]
        text = kwargs.get("text_tokens", 0)
        g = torch.Generator().manual_seed(seed)
        shape = ((batch, heads, video + text, 16) if layout == "bhsd"
                 else (batch, video + text, heads, 16))
        if attend_kind == "reference":  # float64 masked softmax in plain torch
            dtype = torch.float64
        full = [torch.randn(shape, generator=g).to(dtype) for _ in range(3)]
        weight = torch.randn(shape, generator=g).to(dtype)  # d loss / d out
        mask = reference.token_mask(plan)

        def attend_single(q, k, v):
            if attend_kind == "radial":
                return ra.attention(q, k, v, plan, layout=layout)
            if layout == "bhsd":
                q, k, v = (t.transpose(1, 2) for t in (q, k, v))
            out = reference.attention(q, k, v, mask)[0]
            return out.transpose(1, 2) if layout == "bhsd" else out

        sizes = parallel.tensor_split_sizes(video, world) if uneven else None
        start = sum((sizes or parallel.padded_shard_sizes(video, world))[:rank])
        locals_, real = zip(*(_local(t, video, world, rank, sizes, layout) for t in full))
        real = real[0]
        if with_grad:
            full = [t.clone().requires_grad_() for t in full]
            locals_ = [t.clone().requires_grad_() for t in locals_]
        expected = attend_single(*full)
        if attend_kind == "radial":
            got = parallel.ulysses_attention(*locals_, plan, layout=layout, shard_sizes=sizes)
        else:
            got = parallel.ulysses_apply(
                lambda q, k, v: reference.attention(q, k, v, mask)[0], *locals_,
                video_tokens=video, text_tokens=text, shard_sizes=sizes, layout=layout)
        local_len = got.shape[2 if layout == "bhsd" else 1] - text
        scale = float(expected.abs().max())
        result = {
            "video": float((_rows(got, 0, real, layout) - _rows(expected, start, real, layout))
                           .abs().max()) / scale if real else 0.0,
            "text": float((_rows(got, local_len, text, layout) - _rows(expected, video, text, layout))
                          .abs().max()) / scale if text else 0.0,
            "padding": float(_rows(got, real, local_len - real, layout).abs().max())
            if local_len > real else 0.0,
            "dtype": str(got.dtype),
        }
        if with_grad:
            w_local, _ = _local(weight, video, world, rank, sizes, layout)
            w_local = torch.nan_to_num(w_local, nan=0.0)
            if rank != 0:  # the text output is on every rank: count it once
                _rows(w_local, local_len, text, layout).zero_()
            (expected * weight).sum().backward()
            (got * w_local).sum().backward()
            for tensor_name, ref, loc in zip("qkv", full, locals_):
                grad = loc.grad.clone()
                text_grad = _rows(grad, local_len, text, layout).contiguous()
                dist.all_reduce(text_grad)  # replicated tokens: partial gradients per rank
                gscale = float(ref.grad.abs().max())
                result[f"d{tensor_name}.video"] = float(
                    (_rows(grad, 0, real, layout) - _rows(ref.grad, start, real, layout))
                    .abs().max()) / gscale if real else 0.0
                result[f"d{tensor_name}.text"] = float(
                    (text_grad - _rows(ref.grad, video, text, layout)).abs().max()) / gscale \
                    if text else 0.0
                result[f"d{tensor_name}.padding"] = float(
                    _rows(grad, real, local_len - real, layout).abs().max()) \
                    if local_len > real else 0.0
        found[name] = result
    return found


def _check(results, keys, tolerance):
    for rank, found in enumerate(results):
        for name, result in found.items():
            limit = tolerance(result["dtype"])
            for key in keys(result):
                value = result[key]
                bound = 0.0 if key.endswith("padding") else limit
                assert value <= bound, f"rank {rank}, {name}, {key}: {value} > {bound}"


def _tolerance(dtype):
    return {"torch.float64": 1e-12, "torch.float32": 1e-5, "torch.bfloat16": 2e-2}[dtype]


@pytest.mark.parametrize("world", WORLDS)
def test_outputs_equal_one_process(world, seed):
    results = distributed.run(world, attention_worker, seed, False, "radial")
    assert set(results[0]) == {c[0] for c in cases(world)}
    _check(results, lambda r: ("video", "text", "padding"), _tolerance)


@pytest.mark.parametrize("world", WORLDS)
def test_exchange_gradients_equal_one_process(world, seed):
    """The exchanges' backward, around a differentiable float64 attention (independent of the
    radial kernel's backward)."""
    results = distributed.run(world, attention_worker, seed, True, "reference")
    _check(results, lambda r: [k for k in r if k != "dtype"], _tolerance)


def _radial_backward_available():
    import radial_attention as ra

    plan = ra.plan(frames=1, tokens_per_frame=8, block_size=64)
    q = torch.randn(1, 8, 1, 16, requires_grad=True)
    try:
        ra.attention(q, q, q, plan).sum().backward()
    except NotImplementedError:
        return False
    return True


@pytest.mark.parametrize("world", WORLDS)
def test_radial_gradients_equal_one_process(world, seed):
    if not _radial_backward_available():
        pytest.skip("radial_attention.attention has no backward pass in this build (issue 11)")
    results = distributed.run(world, attention_worker, seed, True, "radial")
    _check(results, lambda r: [k for k in r if k != "dtype"], _tolerance)


def errors_worker(rank, world):
    """(argument, message) of each refused call; every rank refuses before any exchange."""
    import radial_attention as ra
    from radial_attention import RadialError, parallel

    plan = ra.plan(frames=2, tokens_per_frame=30, block_size=64)
    local = -(-60 // world)
    found = {}

    def refused(name, fn):
        try:
            fn()
        except RadialError as error:
            found[name] = (error.argument, str(error))
        else:
            found[name] = None

    q = torch.randn(1, local, world, 16)
    refused("group larger than heads", lambda: parallel.ulysses_attention(
        q[:, :, : world - 1], q[:, :, : world - 1], q[:, :, : world - 1], plan))
    full = torch.randn(1, 60, world, 16)
    refused("whole sequence on every rank", lambda: parallel.ulysses_attention(full, full, full, plan))
    refused("shard sizes not adding up", lambda: parallel.ulysses_attention(
        q, q, q, plan, shard_sizes=[local + 1] * world))
    refused("shard sizes of another group", lambda: parallel.ulysses_attention(
        q, q, q, plan, shard_sizes=[60 - local, local]))
    refused("layout", lambda: parallel.ulysses_attention(q, q, q, plan, layout="sbhd"))
    refused("plan", lambda: parallel.ulysses_attention(q, q, q, "plan"))
    return found


@pytest.mark.parametrize("world", WORLDS)
def test_bad_groups_and_shards_are_refused(world):
    results = distributed.run(world, errors_worker)
    local = -(-60 // world)
    for rank, found in enumerate(results):
        def expect(name, argument, *fragments):
            assert found[name] is not None, f"rank {rank}: {name} was accepted"
            got_argument, message = found[name]
            assert got_argument == argument, (name, message)
            assert message.startswith(f"radial: {argument}: expected "), message
            for fragment in fragments:
                assert fragment in message, (name, message)

        expect("group larger than heads", "group size", f"at most {world - 1} ranks", f"got {world}")
        expect("whole sequence on every rank", "q.seq", f"{local} on rank {rank}", "got 60")
        expect("shard sizes not adding up", "shard_sizes", f"{world} ints", "adding up to the plan's 60")
        if world == 4:  # two sizes for a group of four
            expect("shard sizes of another group", "shard_sizes", "4 ints")
        expect("layout", "layout", '"bshd" or "bhsd"')
        expect("plan", "plan", "radial_attention.Plan")


def test_without_a_process_group_is_refused():
    import radial_attention as ra
    from radial_attention import RadialError, parallel

    plan = ra.plan(frames=1, tokens_per_frame=8, block_size=64)
    q = torch.randn(1, 8, 2, 16)
    with pytest.raises(RadialError, match=r"^radial: group: expected an initialised torch.distributed"):
        parallel.ulysses_attention(q, q, q, plan)


def test_torchrun_degree_must_match_the_processes(monkeypatch):
    from radial_attention import RadialError, parallel

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(RadialError, match=r"^radial: ulysses: expected 1 outside torchrun .*got 2"):
        parallel.init_from_torchrun(2)
    monkeypatch.setenv("WORLD_SIZE", "4")
    with pytest.raises(RadialError, match=r"^radial: ulysses: expected the number of processes "
                                          r"torchrun started \(4;.*got 2"):
        parallel.init_from_torchrun(2)
    with pytest.raises(RadialError, match=r"^radial: ulysses: expected an int >= 1, got 0"):
        parallel.init_from_torchrun(0)


def gather_worker(rank, world, seed):
    """shard then gather gives the sequence back (padding dropped), and gather's backward
    gives each rank the gradient of its own rows (padding rows zero)."""
    from radial_attention import parallel

    g = torch.Generator().manual_seed(seed)
    full = torch.randn(2, 111, 3, 4, generator=g)
    weight = torch.randn(full.shape, generator=g)
    found = {}
    for name, sizes in (("padded", None), ("tensor_split", parallel.tensor_split_sizes(111, world))):
        local = parallel.shard(full, shard_sizes=sizes).clone().requires_grad_()
        back = parallel.gather(local, 111, shard_sizes=sizes)
        (back * weight).sum().backward()
        real = (sizes or parallel.padded_shard_sizes(111, world))[rank]
        start = sum((sizes or parallel.padded_shard_sizes(111, world))[:rank])
        found[name] = (bool(torch.equal(back, full)),
                       bool(torch.equal(local.grad[:, :real], weight[:, start:start + real])),
                       float(local.grad[:, real:].abs().sum()) if local.shape[1] > real else 0.0)
    return found


@pytest.mark.parametrize("world", WORLDS)
def test_shard_and_gather(world, seed):
    for rank, found in enumerate(distributed.run(world, gather_worker, seed)):
        for name, (same, grad_rows, padding_grad) in found.items():
            assert same and grad_rows and padding_grad == 0.0, (rank, name)


def stop_worker(rank, world):
    """Rank 1 fails inside stop_on_error; rank 0 is already waiting in a collective. Rank 0
    must get an error promptly, while rank 1's process still lives (so it is the abort that
    released it, not the process's end), rather than wait for rank 1."""
    import time

    import torch.distributed as dist

    from radial_attention import parallel

    if rank == 1:
        time.sleep(1.0)  # let rank 0 enter its collective first
        try:
            with parallel.stop_on_error(rank):
                raise ValueError("bad input on rank 1")
        except ValueError as error:
            time.sleep(20.0)  # alive, out of the group
            return "raised", str(error)
    start = time.monotonic()
    try:
        dist.all_reduce(torch.ones(4))
    except Exception as error:  # noqa: BLE001 - which error gloo gives is its business
        return "stopped", time.monotonic() - start, type(error).__name__
    return "completed", time.monotonic() - start


def test_a_failing_rank_stops_the_others():
    (kind0, *rest0), (kind1, message) = distributed.run(2, stop_worker, timeout=120)
    assert (kind1, message) == ("raised", "bad input on rank 1")
    assert kind0 == "stopped", rest0
    assert rest0[0] < 15, rest0  # before rank 1's process ends (and the 30-minute timeout)
