"""What the patched attention processors share: the settings of one apply() call, the latent
geometry of the current forward, and the denoising step index for the dense warm-up."""

import math
import time
import warnings
from collections import Counter
from dataclasses import dataclass

import torch

from .._errors import invalid

# radial: the radial mask through our kernel; dense: every block through our kernel (a check of
# the kernel against stock attention); stock: diffusers' own attention everywhere (a baseline).
# The same names as radial_attention.plan(pattern=...) for the first two.
PATTERNS = ("radial", "dense", "stock")
# Old spellings, still read (with a DeprecationWarning): "full" was "dense".
_DEPRECATED_PATTERNS = {"full": "dense"}


@dataclass(frozen=True)
class Settings:
    model: str             # the model preset ("wan", "mochi", ...): its attention-sink rule
    dense_layers: int      # the first blocks run dense attention, diffusers' own (stock)
    dense_timesteps: int   # the first denoising steps likewise
    decay_factor: float
    block_size: int
    pattern: str           # PATTERNS
    decay_adjacent: bool
    precision: str = "native"  # "fp8": the FP8 forward in the radial layers (inference only)

    @staticmethod
    def make(model, dense_layers, dense_timesteps, decay_factor, block_size, pattern,
             decay_adjacent, precision="native") -> "Settings":
        """None for dense_layers, dense_timesteps or decay_factor: the model preset's."""
        from ..plan import model_preset

        preset = model_preset(model)
        dense_layers = preset.dense_layers if dense_layers is None else dense_layers
        dense_timesteps = preset.dense_timesteps if dense_timesteps is None else dense_timesteps
        for name, value in (("dense_layers", dense_layers), ("dense_timesteps", dense_timesteps)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise invalid(name, "an int >= 0", repr(value))
        if block_size not in (64, 128) or isinstance(block_size, bool):
            raise invalid("block_size", "64 or 128", repr(block_size))
        if pattern in _DEPRECATED_PATTERNS:
            warnings.warn(f'pattern="{pattern}" is deprecated: use '
                          f'"{_DEPRECATED_PATTERNS[pattern]}" (every block through the radial '
                          'kernel; "stock" is diffusers\' own attention)', DeprecationWarning,
                          stacklevel=3)
            pattern = _DEPRECATED_PATTERNS[pattern]
        if pattern not in PATTERNS:
            raise invalid("pattern", '"radial", "dense" or "stock"', repr(pattern))
        if precision not in ("native", "fp8"):
            raise invalid("precision", '"native" or "fp8"', repr(precision))
        if decay_factor is None:
            decay_factor = preset.decay_factor
        try:
            decay = float(decay_factor)
        except (TypeError, ValueError):
            raise invalid("decay_factor", "a number > 0", repr(decay_factor)) from None
        if not (math.isfinite(decay) and decay > 0):
            raise invalid("decay_factor", "a finite number > 0", repr(decay_factor))
        return Settings(model, dense_layers, dense_timesteps, decay, block_size, pattern,
                        bool(decay_adjacent), precision)


def compiling() -> bool:
    return torch.compiler.is_compiling()


class State:
    """Shared by every processor of one apply() (both experts of Wan2.2 share one)."""

    def __init__(self, settings: Settings, counting: str):
        self.settings = settings
        # "scheduler" (a pipeline was given), "timestep" (a bare transformer) or "noise"
        # (diffusion forcing: the step of the noisiest frame in the pipeline's schedule)
        self.counting = counting
        self.schedule = None          # "noise": returns the pipeline scheduler's timesteps
        self.step = 0
        self.warmup = settings.dense_timesteps > 0
        self.geometry = None          # (latent frames, tokens per frame) of the current forward
        self.text_valid = None        # HunyuanVideo: valid text tokens per batch element
        self.last_timestep = None
        self.timing = False
        self.attention_seconds = 0.0
        self.calls = Counter()        # "radial" / "stock" processor calls (eager runs only)

    def set_step(self, step: int) -> None:
        self.step = int(step)
        # The processors read this bool, not the step, so a compiled model sees one value
        # change (at the end of the warm-up) rather than a new int every step.
        self.warmup = self.step < self.settings.dense_timesteps

    def new_generation(self) -> None:
        self.set_step(0)
        self.last_timestep = None

    def observe_timestep(self, t: float) -> None:
        """Counts denoising steps from the timesteps a bare transformer is called with:
        they fall during one generation, repeat for the guidance passes of a step, and jump
        back up when the next generation starts."""
        if self.last_timestep is None or t > self.last_timestep:
            self.set_step(0)
        elif t < self.last_timestep:
            self.set_step(self.step + 1)
        self.last_timestep = t

    def observe_noise(self, t: float) -> None:
        """Diffusion forcing (SkyReels-V2): frames sit at different noise levels and the
        pipeline steps a copy of its scheduler per frame. The step is that of the noisiest
        frame the transformer sees: how many of the schedule's timesteps lie above it. A
        new chunk of a long video starts again at step 0; clean prefix frames do not count."""
        timesteps = self.schedule()
        if timesteps is None or len(timesteps) == 0:
            return
        timesteps = torch.as_tensor(timesteps).float()
        self.set_step(int((timesteps > t + 1e-3 * max(1.0, abs(t))).sum()))

    def timed(self, fn, device):
        """Runs fn(), adding its wall time to attention_seconds when timing is on."""
        if not self.timing or compiling():
            return fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        result = fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        self.attention_seconds += time.perf_counter() - start
        return result
