"""``radial-train fit``: a LoRA on a Wan2.1/2.2 or HunyuanVideo transformer, trained on a
latent cache with the model's own flow-matching objective, radial attention in place.

One step: for each sample of the global batch, noise and a timestep drawn from a generator
seeded by (seed, step, sample position), so that every rank of a data-parallel run, and a
resumed run, draws exactly what a single uninterrupted process draws; sigma = shift * u /
(1 + (shift - 1) * u) (the scheduler's timestep shift), x_t = (1 - sigma) x_0 + sigma
noise, and the transformer at timestep 1000 sigma learns the velocity noise - x_0 (mean
squared error). Gradients are accumulated over micro-batches, averaged over ranks
(all-reduce), clipped, and AdamW steps with a linear warm-up of the learning rate.

``compile``: the transformer's repeated blocks run under torch.compile (compiled.py); the
same step, its elementwise work fused, one compilation per bucket.

Sequence parallelism (``ulysses`` N > 1, under torchrun with a multiple of N processes): the
transformer runs under diffusers' context parallelism (radial_attention.parallel.enable_ulysses)
in Ulysses groups of N consecutive ranks. The ranks of one group train on the same samples
(data-parallel rank = rank // N), each holding a share of every video's tokens; their LoRA
gradients are summed within the group (each rank's backward gives its tokens' part), then
averaged over the W / N groups by the same all-reduce as plain data parallelism.
"""

import dataclasses
import json
import math
import os
import pathlib
import time
from dataclasses import dataclass
from typing import Optional

import torch

from .._errors import invalid
from . import cache as _cache
from . import checkpoint as _checkpoint
from . import compiled as _compiled
from . import lora as _lora
from . import models

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
# Settings a resumed run must share with the run it continues (else it is another run).
_RESUME_KEYS = ("model", "transformer", "rank", "alpha", "feed_forward", "pattern", "dense_layers",
                "decay_factor", "block_size", "batch_size", "grad_accum", "seed", "shift",
                "timestep_sampling", "timestep_range", "learning_rate", "weight_decay",
                "warmup_steps", "max_grad_norm", "guidance", "dtype", "ulysses")


@dataclass
class FitConfig:
    model: str                          # diffusers pipeline folder or hub id
    cache: str                          # folder written by prepare
    output: str                         # LoRA, checkpoints/, losses.jsonl
    transformer: str = "transformer"    # Wan2.2 A14B: "transformer_2" trains the low-noise expert
    rank: int = 32
    alpha: Optional[float] = None       # default: rank (scale 1)
    dropout: float = 0.0
    feed_forward: bool = False          # also adapt the blocks' MLPs
    pattern: str = "radial"             # "radial", "dense" (every block, our kernel) or "stock"
    dense_layers: int = 1               # first blocks keep dense attention, as at inference
    decay_factor: Optional[float] = None
    block_size: int = 128
    learning_rate: float = 1e-4
    weight_decay: float = 0.01
    warmup_steps: int = 0
    max_steps: int = 1000
    batch_size: int = 1                 # per process
    grad_accum: int = 1
    max_grad_norm: float = 1.0          # 0: no clipping
    gradient_checkpointing: bool = True
    compile: bool = False               # torch.compile the repeated blocks (train/compiled.py)
    shift: Optional[float] = None       # default: the pipeline scheduler's
    timestep_sampling: str = "uniform"  # or "logit_normal"
    timestep_range: tuple = (0.0, 1000.0)
    guidance: float = 6.0               # HunyuanVideo's embedded guidance (x1000, as the pipeline)
    seed: int = 0
    dtype: str = "bf16"                 # base weights; LoRA parameters are float32
    device: Optional[str] = None
    checkpoint_every: int = 100         # 0: only at the end
    keep_checkpoints: int = 3           # 0: keep all
    resume: Optional[str] = None        # "latest" or a checkpoint folder
    ulysses: int = 1                    # sequence-parallel group size (torchrun, N | processes)
    progress: bool = True

    def check(self) -> None:
        def positive_int(name, minimum):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise invalid(name, f"an int >= {minimum}", repr(value))
        for name, minimum in (("rank", 1), ("max_steps", 1), ("batch_size", 1), ("grad_accum", 1),
                              ("warmup_steps", 0), ("checkpoint_every", 0), ("keep_checkpoints", 0),
                              ("dense_layers", 0), ("seed", 0), ("ulysses", 1)):
            positive_int(name, minimum)
        if self.pattern not in ("radial", "dense", "stock"):
            raise invalid("pattern", '"radial", "dense" or "stock"', repr(self.pattern))
        if self.timestep_sampling not in ("uniform", "logit_normal"):
            raise invalid("timestep_sampling", '"uniform" or "logit_normal"', repr(self.timestep_sampling))
        lo, hi = self.timestep_range
        if not (0 <= lo < hi <= 1000):
            raise invalid("timestep_range", "0 <= low < high <= 1000", f"{lo}, {hi}")
        if self.dtype not in _DTYPES:
            raise invalid("dtype", "bf16, fp16 or fp32", repr(self.dtype))
        if not (self.learning_rate > 0):
            raise invalid("learning_rate", "a number > 0", self.learning_rate)
        if self.transformer not in ("transformer", "transformer_2"):
            raise invalid("transformer", '"transformer" or "transformer_2"', repr(self.transformer))
        if not isinstance(self.compile, bool):
            raise invalid("compile", "true or false", repr(self.compile))
        if self.compile and self.ulysses > 1:
            # Not tested under diffusers' context-parallel hooks: refused rather than guessed.
            raise invalid("compile", "false with ulysses > 1 (compiled blocks are supported for "
                          "one process or data parallelism)", f"true with ulysses {self.ulysses}")


def check_ulysses(ulysses: int, world: int) -> None:
    """The Ulysses group size against the processes torchrun started (before any collective:
    every rank raises alike)."""
    if ulysses > 1 and "WORLD_SIZE" not in os.environ:
        raise invalid("ulysses", f"1 outside torchrun (--ulysses {ulysses} needs `torchrun "
                      f"--nproc-per-node` a multiple of {ulysses})", ulysses)
    if world % ulysses:
        raise invalid("ulysses", f"a divisor of the {world} processes torchrun started "
                      "(--ulysses N groups N consecutive ranks)", ulysses)


class _Distributed:
    """torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK); one process without it.
    ``ulysses``: ranks per sequence-parallel group; the data-parallel rank and world count
    groups (the ranks of one group train on the same samples)."""

    def __init__(self, device: torch.device, ulysses: int = 1):
        import torch.distributed as dist

        self.dist = dist
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        check_ulysses(ulysses, self.world)
        self.ulysses = ulysses
        self.data_world = self.world // ulysses
        self.data_rank = self.rank // ulysses
        self.owned = False
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
            self.owned = True

    @property
    def main(self) -> bool:
        return self.rank == 0

    def mean_(self, tensors) -> None:
        """Averages tensors of one dtype over the ranks, in one all-reduce."""
        if self.world > 1:
            flat = torch.cat([t.reshape(-1) for t in tensors])
            self.dist.all_reduce(flat)
            flat.div_(self.world)
            offset = 0
            for t in tensors:
                t.copy_(flat[offset:offset + t.numel()].view_as(t))
                offset += t.numel()

    def broadcast_(self, tensors) -> None:
        if self.world > 1:
            for t in tensors:
                self.dist.broadcast(t, 0)

    def barrier(self) -> None:
        if self.world > 1:
            self.dist.barrier()

    def close(self) -> None:
        if self.owned:
            self.dist.destroy_process_group()


def sample_generator(seed: int, step: int, micro: int, position: int) -> torch.Generator:
    """The generator of one sample of the global batch: the same whichever rank draws it."""
    key = ((seed * 1_000_003 + step) * 1_009 + micro) * 65_537 + position
    return torch.Generator().manual_seed(key % (2**63 - 1))


def shifted_sigma(u: torch.Tensor, shift: float) -> torch.Tensor:
    return shift * u / (1 + (shift - 1) * u)


def unshifted(sigma: float, shift: float) -> float:
    return sigma / (shift - (shift - 1) * sigma)


def draw(config: FitConfig, shift: float, shape, generator: torch.Generator):
    """(noise, sigma) of one sample."""
    noise = torch.randn(shape, generator=generator)
    if config.timestep_sampling == "uniform":
        r = torch.rand((), generator=generator)
    else:
        r = torch.sigmoid(torch.randn((), generator=generator))
    lo = unshifted(config.timestep_range[0] / 1000, shift)
    hi = unshifted(config.timestep_range[1] / 1000, shift)
    u = lo + (hi - lo) * r
    return noise, shifted_sigma(u, shift)


def flow_matching_loss(transformer, family, batch, noise, sigma, dtype, text_length, guidance):
    """MSE between the transformer's velocity and noise - x_0 at x_t = (1-s) x_0 + s noise."""
    x0 = batch["latents"]
    s = sigma.view(-1, 1, 1, 1, 1).to(x0)
    noisy = (1 - s) * x0 + s * noise
    target = noise - x0
    kwargs = models.transformer_inputs(family, batch, noisy, (sigma * 1000).to(x0.device), dtype,
                                       text_length, guidance)
    pred = transformer(**kwargs)[0]
    return torch.nn.functional.mse_loss(pred.float(), target.float())


def _to(batch, device):
    return {k: v.to(device) for k, v in batch.items()}


def fit(config: FitConfig) -> dict:
    """Trains; returns {"losses": [loss of each step run], "lora": path, "checkpoints": [...],
    "transformer": the trained model (its blocks still compiled with config.compile),
    "attention_calls": radial / stock processor calls (eager calls only: compiled blocks do
    not count)}."""
    config.check()
    family = models.family_of(config.model)
    tconfig = models.transformer_config(config.model, config.transformer)
    cache = _cache.LatentCache(config.cache)
    _cache.check_model(cache.manifest, config.cache, models.fingerprint(family, tconfig),
                       f"{config.model} ({config.transformer})")
    shift = float(config.shift) if config.shift is not None else models.default_shift(config.model)
    alpha = float(config.alpha) if config.alpha is not None else float(config.rank)
    text_length = int(cache.manifest["text_length"])
    dtype = _DTYPES[config.dtype]
    device = torch.device(config.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and "LOCAL_RANK" in os.environ:
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
    dist = _Distributed(device, config.ulysses)
    output = pathlib.Path(config.output)
    ckpt_dir = output / "checkpoints"
    try:
        return _fit(config, family, cache, shift, alpha, text_length, dtype, device, dist, output,
                    ckpt_dir)
    finally:
        dist.close()


def _fit(config, family, cache, shift, alpha, text_length, dtype, device, dist, output, ckpt_dir):
    from tqdm.auto import tqdm

    import radial_attention.diffusers as radial

    torch.manual_seed(config.seed)  # the LoRA's initial weights: the same on every rank
    transformer = models.load_transformer(config.model, config.transformer, dtype).to(device)
    transformer.requires_grad_(False)
    params = _lora.add_lora(transformer, family, config.rank, alpha, config.dropout,
                            config.feed_forward)
    dist.broadcast_([p.data for p in params])
    if config.gradient_checkpointing:
        transformer.enable_gradient_checkpointing()
    transformer.train()
    attention_state = radial.apply(transformer, dense_layers=config.dense_layers,
                                   dense_timesteps=0, decay_factor=config.decay_factor,
                                   block_size=config.block_size, pattern=config.pattern)
    graphs = 0
    if config.compile:
        _compiled.compile_blocks(transformer)
        graphs = _compiled.expected_graphs(cache, family)
    ulysses_group = None
    if config.ulysses > 1:
        from .. import parallel

        parallel_config = parallel.enable_ulysses(
            transformer, mesh=parallel.ulysses_mesh(config.ulysses, device.type))
        ulysses_group = parallel_config.context_parallel_config._ulysses_mesh.get_group()

    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    warmup = config.warmup_steps
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / warmup) if warmup else 1.0)

    settings = {k: getattr(config, k) for k in _RESUME_KEYS}
    settings["timestep_range"] = list(settings["timestep_range"])
    settings["world_size"] = dist.world
    start = 0
    if dist.main:
        _checkpoint.clean_partial(ckpt_dir)
    dist.barrier()
    if config.resume:
        path = _checkpoint.resolve(config.resume, ckpt_dir)
        if path is not None:
            lora_state, state = _checkpoint.load(path)
            for key, value in state["settings"].items():
                if settings.get(key) != value:
                    raise invalid(f"resume ({path})", f"a checkpoint of a run with {key} = "
                                  f"{settings.get(key)!r}", f"one with {key} = {value!r}")
            _lora.load_lora_state_dict(transformer, lora_state)
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            _checkpoint.set_rng_states(state["rng"][min(dist.rank, len(state["rng"]) - 1)])
            start = state["step"]

    global_batch = config.batch_size * dist.data_world
    # Every epoch has as many batches (the bucket sizes fix it); their order changes.
    epoch_cache = {0: _cache.epoch_batches(cache, global_batch, config.seed, 0)}
    per_epoch = len(epoch_cache[0])

    def micro_batch(m):
        """This rank's sample indices and global positions of global micro-batch m."""
        epoch, position = divmod(m, per_epoch)
        if epoch not in epoch_cache:
            epoch_cache.clear()
            epoch_cache[epoch] = _cache.epoch_batches(cache, global_batch, config.seed, epoch)
        batch = epoch_cache[epoch][position]
        lo = dist.data_rank * config.batch_size
        return batch[lo:lo + config.batch_size], range(lo, lo + config.batch_size)

    losses, saved = [], []
    log_path = output / "losses.jsonl"
    if dist.main:
        output.mkdir(parents=True, exist_ok=True)
        _truncate_log(log_path, start)
    bar = tqdm(total=config.max_steps, initial=start, desc="fit", disable=not (config.progress and dist.main))
    # Compiled blocks: room for a graph per bucket (a no-op when eager or few buckets).
    with _compiled.recompile_limit(graphs):
        for step in range(start, config.max_steps):
            began = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            total = torch.zeros((), dtype=torch.float64, device=device)
            for micro in range(config.grad_accum):
                indices, positions = micro_batch(step * config.grad_accum + micro)
                batch = _to(cache.collate(indices), device)
                drawn = [draw(config, shift, batch["latents"].shape[1:],
                              sample_generator(config.seed, step, micro, p)) for p in positions]
                noise = torch.stack([n for n, _ in drawn]).to(device)
                sigma = torch.stack([s for _, s in drawn]).to(device)
                loss = flow_matching_loss(transformer, family, batch, noise, sigma, dtype, text_length,
                                          config.guidance)
                (loss / config.grad_accum).backward()
                total += loss.detach().double() / config.grad_accum
            for p in params:
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
            if ulysses_group is not None:
                from .. import parallel

                # Each rank's part of the group's samples' gradient -> the whole of it.
                parallel.sum_gradients(params, ulysses_group)
            # Every member of a Ulysses group now holds the group's gradient and loss: the mean
            # over all ranks is the mean over the data-parallel groups.
            dist.mean_([p.grad for p in params])
            dist.mean_([total])
            if config.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
            optimizer.step()
            scheduler.step()
            loss_value = float(total)
            if not math.isfinite(loss_value):
                raise FloatingPointError(f"radial-train fit: the loss is {loss_value} at step {step + 1}")
            losses.append(loss_value)
            seconds = time.perf_counter() - began
            bar.set_postfix(loss=f"{loss_value:.4f}", s_per_step=f"{seconds:.2f}")
            bar.update(1)
            done = step + 1
            if dist.main:
                with open(log_path, "a") as f:
                    f.write(json.dumps({"step": done, "loss": loss_value, "lr": scheduler.get_last_lr()[0],
                                        "seconds": round(seconds, 4)}) + "\n")
            if (config.checkpoint_every and done % config.checkpoint_every == 0) or done == config.max_steps:
                saved.append(_save_checkpoint(config, dist, ckpt_dir, done, transformer, optimizer,
                                              scheduler, settings))
    bar.close()

    radial.remove(transformer)
    lora_path = None
    if dist.main:
        lora_path = _lora.save_for_diffusers(_pipeline_class(family), transformer, output,
                                             config.rank, alpha)
    dist.barrier()
    return {"losses": losses, "lora": lora_path, "checkpoints": saved, "transformer": transformer,
            "attention_calls": dict(attention_state.calls)}


def _save_checkpoint(config, dist, ckpt_dir, step, transformer, optimizer, scheduler, settings):
    """Rank 0 writes; every rank's generator states go in (gathered), so each resumes its own."""
    rng = _checkpoint.rng_states()
    states = [rng]
    if dist.world > 1:
        states = [None] * dist.world
        dist.dist.all_gather_object(states, rng)
    path = None
    if dist.main:
        state = {"step": step, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                 "rng": states, "settings": settings, "config": dataclasses.asdict(config)}
        path = _checkpoint.save(ckpt_dir, step, _lora.lora_state_dict(transformer), state,
                                config.keep_checkpoints)
    dist.barrier()
    return path


def _truncate_log(path, step):
    """Keeps the log's rows up to `step` (the steps a resumed run does not repeat)."""
    if not path.exists():
        return
    rows = [line for line in path.read_text().splitlines() if line.strip()]
    kept = [line for line in rows if json.loads(line)["step"] <= step]
    _cache.atomic_write_bytes(path, "".join(line + "\n" for line in kept).encode())


def _pipeline_class(family):
    import diffusers

    return diffusers.WanPipeline if family == "wan" else diffusers.HunyuanVideoPipeline
