"""``radial-train fit --compile``: regional compilation of the transformer's repeated blocks.

torch.compile (Inductor) fuses the blocks' elementwise work (norms and their float32 upcasts,
modulation, RoPE, gating, the LoRA casts) around the matmuls and attention, which eager runs
as one kernel per op. Only the blocks are compiled (diffusers' compile_repeated_blocks, each
block calling one compiled forward), so compilation takes the time of one block, not of the
whole model, and gradient checkpointing stays as it is: the checkpointed call is the
compiled block, recomputed in the backward like the eager one.

What makes a block recompile (dynamo guards on what its forward reads in Python):
  * the latent shape: compiled static (dynamic=False), one graph per bucket. The radial plan
    is chosen from the latent geometry, which the graph specialises on anyway, and static
    shapes give Inductor its best kernels;
  * dense or radial layer, and whether the block's input needs a gradient (the first block's
    does not): about two graphs per shape;
  * HunyuanVideo: the captions' valid text lengths (its mask leaves the padding out), one
    graph per distinct length.
Timesteps, text and LoRA weights are tensors: they never recompile. recompile_limit() raises
dynamo's per-function limit to cover those graphs, so that no bucket falls back to eager.
"""

import contextlib

import torch

from .._errors import invalid

# Graphs per shape (and HunyuanVideo text length) that a block may need: dense and radial,
# with and without a gradient at its input; twice that as headroom.
GRAPHS_PER_SHAPE = 4
# torch.compile's backend (the tests use "aot_eager" where Inductor's C++ build is too slow).
BACKEND = "inductor"


def compile_blocks(transformer, backend: str = None) -> None:
    """Compiles each repeated block of a diffusers transformer in place (its state dict and
    parameter names are unchanged, so LoRA saving and checkpoints are unaffected). fullgraph:
    a graph break inside a block is an error rather than a silent slow path."""
    compile_repeated = getattr(transformer, "compile_repeated_blocks", None)
    if compile_repeated is None or not getattr(transformer, "_repeated_blocks", None):
        import diffusers

        raise invalid("compile", "a diffusers transformer with compile_repeated_blocks "
                      "(diffusers >= 0.35)", f"{type(transformer).__name__} under diffusers "
                      f"{diffusers.__version__}")
    compile_repeated(fullgraph=True, dynamic=False, backend=backend or BACKEND)


def expected_graphs(cache, family: str) -> int:
    """How many versions of a block's forward training on `cache` may compile: per bucket
    (latent shape) and, for HunyuanVideo, per distinct valid caption length in the cache
    (read from each sample file's mask alone, without loading its latents)."""
    variants = len(cache.buckets)
    if family == "hunyuan":
        from safetensors import safe_open

        lengths = set()
        for sample in cache.samples:
            with safe_open(str(cache.folder / sample["file"]), framework="pt") as f:
                lengths.add(int(f.get_tensor("prompt_attention_mask").sum()))
        variants *= max(1, len(lengths))
    return GRAPHS_PER_SHAPE * variants


def recompile_limit(graphs: int):
    """A context in which dynamo compiles up to `graphs` versions of one function (the block's
    forward) before it gives up and runs it eagerly; the defaults are kept where higher."""
    config = torch._dynamo.config
    name = "recompile_limit" if hasattr(config, "recompile_limit") else "cache_size_limit"
    limits = {name: graphs}
    if hasattr(config, "accumulated_recompile_limit"):
        limits["accumulated_recompile_limit"] = 8 * graphs
    raise_to = {k: v for k, v in limits.items() if v > getattr(config, k)}
    return config.patch(**raise_to) if raise_to else contextlib.nullcontext()
