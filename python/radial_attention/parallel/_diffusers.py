"""diffusers' context parallelism (Ulysses) for Wan and HunyuanVideo, set up without
diffusers' accelerator lookup (so it runs on CPUs over gloo too), with a plan of ours for
HunyuanVideo, which diffusers gives none.

diffusers' mechanism: hooks split chosen inputs (or outputs) of chosen submodules along the
sequence and gather the final output; attention processors see their rank's tokens and the
config's Ulysses group. Radial layers exchange through radial_attention.parallel; dense
layers and steps, and Wan's cross-attention, through diffusers' own Ulysses attention.
"""

import torch
import torch.distributed as dist

from .._errors import invalid
from ._attention import group_size_rank


def hunyuan_cp_plan():
    """HunyuanVideo's context-parallel plan: the video tokens are split after the patch
    embedding, with their rotary tables; the text stream (encoder_hidden_states, its
    attention mask and every text token of the joint attention) stays whole on every rank,
    so the text keeps its exact meaning (padded text keys are masked by the plan, as on one
    process). The output projection's result is gathered before the unpatchify.

    The attention mask the model builds from the local sequence then describes the local
    joint sequence (this rank's video tokens, then the text), which is what diffusers'
    Ulysses attention of the dense layers gathers."""
    from diffusers.models._modeling_parallel import ContextParallelInput, ContextParallelOutput

    return {
        "rope": {
            0: ContextParallelInput(split_dim=0, expected_dims=2, split_output=True),
            1: ContextParallelInput(split_dim=0, expected_dims=2, split_output=True),
        },
        "x_embedder": {
            0: ContextParallelInput(split_dim=1, expected_dims=3, split_output=True),
        },
        "proj_out": ContextParallelOutput(gather_dim=1, expected_dims=3),
    }


def _cp_plan(transformer, family):
    if family == "wan":
        return transformer._cp_plan
    condition = getattr(transformer.config, "image_condition_type", None)
    if condition == "token_replace":
        raise invalid("model_or_pipeline", "a HunyuanVideo transformer without token "
                      "replacement (its first-frame tokens cannot be split over ranks)",
                      f"image_condition_type={condition!r}")
    return hunyuan_cp_plan()


def _sharded_attentions(transformer, family):
    """The attention modules that see split tokens: every attention of Wan's blocks (the
    cross-attention too: its queries are split); HunyuanVideo's double- and single-stream
    blocks, not its text refiner (text only, whole on every rank)."""
    if family == "wan":
        blocks = list(transformer.blocks)
    else:
        blocks = list(transformer.transformer_blocks) + list(transformer.single_transformer_blocks)
    return [m for block in blocks for m in block.modules() if hasattr(m, "processor")]


def enable_ulysses(model_or_pipeline, group=None, ulysses_anything=False):
    """Splits the sequence of a Wan or HunyuanVideo transformer (or of a pipeline's
    transformers) over `group` (None: every process) with diffusers' context parallelism,
    Ulysses degree = the group's size. Call on every rank, before or after
    ``radial_attention.diffusers.apply``. Returns diffusers' ParallelConfig (None for a
    group of one, which needs nothing).

    The head count must divide by the group: diffusers' own Ulysses attention, which runs
    the dense layers and steps and Wan's cross-attention, needs it (radial layers alone
    would pad). The token count must divide too unless ``ulysses_anything`` (diffusers'
    uneven split; its dense attention then runs forward only).
    """
    from diffusers.hooks.context_parallel import apply_context_parallel
    from diffusers.models._modeling_parallel import ContextParallelConfig, ParallelConfig
    from torch.distributed.device_mesh import init_device_mesh

    from ..diffusers import _family, _transformers

    world, rank = group_size_rank(group)
    if group is not None and world != dist.get_world_size():
        raise invalid("group", "None or a group of every process (diffusers' mesh spans the "
                      "world)", f"a group of {world} of {dist.get_world_size()} processes")
    transformers, _ = _transformers(model_or_pipeline)
    for transformer in transformers:
        heads = transformer.config.num_attention_heads
        if heads % world:
            raise invalid("group size", f"a divisor of the model's {heads} attention heads "
                          "(diffusers' Ulysses attention, which runs the dense layers and "
                          "steps, splits them evenly)", world)
        if getattr(transformer, "_parallel_config", None) is not None:
            raise invalid("model_or_pipeline", "a model without parallelism applied",
                          "one with a parallel config already")
    if world == 1:
        return None
    device = next(transformers[0].parameters()).device
    mesh = init_device_mesh(device.type, (1, world), mesh_dim_names=("ring", "ulysses"))
    config = ParallelConfig(context_parallel_config=ContextParallelConfig(
        ulysses_degree=world, ulysses_anything=bool(ulysses_anything)))
    config.setup(rank, world, device, mesh=mesh)
    for transformer in transformers:
        # What ModelMixin.enable_parallelism does, minus its accelerator lookup.
        transformer._parallel_config = config
        for module in _sharded_attentions(transformer, _family(transformer)):
            processor = getattr(module, "processor", None)
            if processor is not None and hasattr(processor, "_parallel_config"):
                processor._parallel_config = config
        apply_context_parallel(transformer, config.context_parallel_config,
                               _cp_plan(transformer, _family(transformer)))
    return config


__all__ = ["enable_ulysses", "hunyuan_cp_plan"]
