"""diffusers' context parallelism (Ulysses) for Wan and HunyuanVideo, set up without
diffusers' accelerator lookup (so it runs on CPUs over gloo too), with a plan of ours for
HunyuanVideo, which diffusers gives none.

diffusers' mechanism: hooks split chosen inputs (or outputs) of chosen submodules along the
sequence and gather the final output; attention processors see their rank's tokens and the
config's Ulysses group. Radial layers exchange through radial_attention.parallel, and so do
HunyuanVideo's dense layers and steps (its text stays whole on every rank); Wan's dense
layers and steps and its cross-attention go through diffusers' own Ulysses attention.
"""

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
    if family not in ("wan", "hunyuan"):
        raise invalid("model_or_pipeline", "a Wan or HunyuanVideo model (Ulysses parallelism "
                      "is not wired for the others yet)", type(transformer).__name__)
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


def ulysses_mesh(degree=None, device_type="cuda"):
    """The device mesh of Ulysses groups over every process: dims ("data", "ring",
    "ulysses") of sizes (world / degree, 1, degree); consecutive ranks form one Ulysses group
    (r * degree ... r * degree + degree - 1), and mesh["data"] joins the ranks that hold the
    same shard of different samples (for data parallelism on top). degree=None: every
    process in one Ulysses group. Every process must call it (it makes process groups)."""
    from torch.distributed.device_mesh import init_device_mesh

    world, _ = group_size_rank(None)
    degree = world if degree is None else degree
    if isinstance(degree, bool) or not isinstance(degree, int) or degree < 1 or world % degree:
        raise invalid("degree", f"a divisor of the {world} processes", repr(degree))
    return init_device_mesh(device_type, (world // degree, 1, degree),
                            mesh_dim_names=("data", "ring", "ulysses"))


def enable_ulysses(model_or_pipeline, degree=None, ulysses_anything=False, mesh=None):
    """Splits the sequence of a Wan or HunyuanVideo transformer (or of a pipeline's
    transformers) over a Ulysses group with diffusers' context parallelism. degree: the
    group's size (default: every process; a divisor of the world gives world / degree
    groups of consecutive ranks, for data parallelism on top); or mesh: a DeviceMesh from
    :func:`ulysses_mesh` (or any with "ring" and "ulysses" dims, ring of size 1). Call on
    every rank, before or after ``radial_attention.diffusers.apply``. Returns diffusers'
    ParallelConfig (its ``context_parallel_config._ulysses_mesh.get_group()`` is the group),
    or None for a group of one, which needs nothing.

    The head count must divide by the group: diffusers' own Ulysses attention, which runs
    Wan's dense layers and steps and its cross-attention, needs it (radial layers alone
    would pad). The token count must divide too unless ``ulysses_anything`` (diffusers'
    uneven split, whose output gather needs NCCL).
    """
    from diffusers.hooks.context_parallel import apply_context_parallel
    from diffusers.models._modeling_parallel import ContextParallelConfig, ParallelConfig

    from ..diffusers import _family, _transformers

    world, rank = group_size_rank(None)
    transformers, _ = _transformers(model_or_pipeline)
    device = next(transformers[0].parameters()).device
    # Everything is checked before the mesh is made: making it is collective, and a rank
    # that raised half way would leave the others waiting.
    if mesh is not None:
        if "ulysses" not in mesh.mesh_dim_names or "ring" not in mesh.mesh_dim_names:
            raise invalid("mesh", 'a DeviceMesh with "ring" and "ulysses" dims',
                          mesh.mesh_dim_names)
        if mesh["ring"].size() != 1:
            raise invalid("mesh[\"ring\"]", "size 1 (ring attention splits the keys, which "
                          "radial attention's plan over the whole sequence cannot follow)",
                          mesh["ring"].size())
        size = mesh["ulysses"].size()
    else:
        size = world if degree is None else degree
        if isinstance(size, bool) or not isinstance(size, int) or size < 1 or world % size:
            raise invalid("degree", f"a divisor of the {world} processes", repr(degree))
    for transformer in transformers:
        heads = transformer.config.num_attention_heads
        if heads % size:
            raise invalid("group size", f"a divisor of the model's {heads} attention heads "
                          "(diffusers' Ulysses attention, which runs the dense layers and "
                          "steps, splits them evenly)", size)
        if getattr(transformer, "_parallel_config", None) is not None:
            raise invalid("model_or_pipeline", "a model without parallelism applied",
                          "one with a parallel config already")
    plans = [_cp_plan(t, _family(t)) for t in transformers]
    if size == 1:
        return None
    if mesh is None:
        mesh = ulysses_mesh(size, device.type)
    config = ParallelConfig(context_parallel_config=ContextParallelConfig(
        ulysses_degree=size, ulysses_anything=bool(ulysses_anything)))
    config.setup(rank, world, device, mesh=mesh)
    for transformer, plan in zip(transformers, plans):
        # What ModelMixin.enable_parallelism does, minus its accelerator lookup.
        transformer._parallel_config = config
        for module in _sharded_attentions(transformer, _family(transformer)):
            processor = getattr(module, "processor", None)
            if processor is not None and hasattr(processor, "_parallel_config"):
                processor._parallel_config = config
        apply_context_parallel(transformer, config.context_parallel_config, plan)
    return config


__all__ = ["enable_ulysses", "hunyuan_cp_plan", "ulysses_mesh"]
