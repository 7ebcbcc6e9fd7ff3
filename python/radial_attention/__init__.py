"""Radial Attention for PyTorch: a static block-sparse attention mask for video diffusion.

    import radial_attention as ra
    plan = ra.plan(video_frames=69, height=768, width=1280, model="wan", decay_factor=0.2)
    out = ra.attention(q, k, v, plan)          # q, k, v: [batch, seq, heads, head_dim]

For diffusers pipelines see ``radial_attention.diffusers.apply``.
"""

from ._errors import RadialError, RadialRuntimeError
from .ops import attention
from .plan import (ModelPreset, Plan, PlanKey, clear_cache, geometry_from_video, model_preset,
                   plan, plan_for_video)

__version__ = "0.1.0"


def cuda_available() -> bool:
    """True when the library was built with CUDA and a GPU is visible."""
    from . import _lib

    return bool(_lib.lib().radial_cuda_available())


def built_with_cuda() -> bool:
    from . import _lib

    return bool(_lib.lib().radial_built_with_cuda())


__all__ = ["ModelPreset", "Plan", "PlanKey", "RadialError", "RadialRuntimeError", "attention",
           "built_with_cuda", "clear_cache", "cuda_available", "geometry_from_video",
           "model_preset", "plan", "plan_for_video"]
