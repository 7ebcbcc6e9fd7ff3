"""radial-train: LoRA fine-tuning of Wan2.1/2.2 and HunyuanVideo transformers with radial
attention, for videos longer than the models were trained on.

    python -m radial_attention.train prepare ...   # videos + captions -> latent cache
    python -m radial_attention.train fit ...       # cache -> LoRA (diffusers format)

Layout: videos.py (finding and reading clips), models.py (what differs between model
families), cache.py (the latent cache and its buckets), prepare.py, lora.py (targets and the
diffusers format), checkpoint.py (exact, atomic checkpoints), fit.py (the training loop),
cli.py (flags and TOML config).
"""

from .fit import FitConfig, fit
from .prepare import prepare

__all__ = ["FitConfig", "fit", "prepare"]
