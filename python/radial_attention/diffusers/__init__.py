"""Radial Attention for diffusers video pipelines (Wan2.1, Wan2.2 incl. TI2V-5B, Wan VACE,
SkyReels-V2 incl. diffusion forcing, HunyuanVideo T2V and I2V, Mochi-1, LTX-Video; the mask
rules of each: docs/models.md).

    import radial_attention.diffusers as radial
    radial.apply(pipe, dense_layers=1, dense_timesteps=12, decay_factor=0.2)
    video = pipe(prompt, num_frames=81, height=480, width=832).frames[0]
    radial.remove(pipe)   # back to the stock attention

Every self-attention processor is wrapped: the first ``dense_layers`` blocks and the first
``dense_timesteps`` denoising steps run the stock processor unchanged (so they equal stock
diffusers exactly), the rest run the radial block-sparse mask. Cross-attention (Wan's and
LTX-Video's text) is untouched; joint attention (HunyuanVideo's and Mochi-1's text appended
to the video) keeps its text rows and columns dense and its padded text keys masked.
The latent geometry is read from each forward's input, so changing resolution or length
between calls just works. Steps are counted at the pipeline's scheduler when a pipeline is
given, otherwise from the timesteps the transformer receives (the noisiest token's, where
they are per token or per frame). SkyReels-V2's diffusion-forcing pipelines deep-copy their
scheduler per frame, so there a step is the noisiest frame's step in the pipeline's schedule:
each chunk of a long video starts dense again (docs/models.md). The model preset, whose mask
rules and defaults apply, comes from the transformer (:func:`preset_of`).

Context parallelism (diffusers' ContextParallelConfig; set it up with
``radial_attention.parallel.enable_ulysses``, which also gives HunyuanVideo a plan): under
Ulysses (``ulysses_degree``) each rank sees the whole sequence for its heads, through
radial_attention.parallel's exchange (HunyuanVideo's text whole on every rank); ring
attention splits the keys across ranks and is refused with a clear error.

torch.compile: compiling the transformer (or its repeated blocks) works; when the whole
transformer of a bare model (not a pipeline) is compiled, the step counter cannot read the
timesteps inside the graph, so call :func:`set_step` yourself or apply to the pipeline.
HunyuanVideo reads its valid text lengths on the host before each forward; inside a
whole-model compiled graph it cannot, and its layers then run stock attention.

Training (e.g. a LoRA fine-tuned with the radial mask): the radial layers are differentiable
through the library's backward pass, in training mode, with gradient checkpointing of the
transformer blocks (``enable_gradient_checkpointing()``), compiled or not, and under Ulysses
context parallelism (each rank then holds its sequence shard's share of the gradients).
"""

import functools
import importlib
from dataclasses import dataclass

from .._errors import invalid
from . import _hunyuan, _ltx, _mochi, _wan
from ._state import Settings, State, compiling

_ATTR = "_radial_attention"


@dataclass(frozen=True)
class Family:
    """A diffusers transformer class and what patches it: its module (self_attentions,
    latent_geometry or call_geometry, and optionally preset(transformer), TIMESTEP_ARG,
    TIMESTEPS_RISE), its processor, and the model preset it plans with by default."""

    module_name: str  # under diffusers.models.transformers
    class_name: str
    module: object
    processor: type
    preset: str

    def diffusers_class(self):
        try:
            module = importlib.import_module(f"diffusers.models.transformers.{self.module_name}")
        except ImportError:  # pragma: no cover - an older diffusers
            return None
        return getattr(module, self.class_name, None)

    def preset_of(self, transformer) -> str:
        choose = getattr(self.module, "preset", None)
        return choose(transformer) if choose is not None else self.preset


# One entry per transformer family.
FAMILIES = {
    "wan": Family("transformer_wan", "WanTransformer3DModel", _wan, _wan.WanRadialProcessor,
                  "wan"),
    # Wan's self-attention, VACE's control blocks included (_wan.self_attentions, _wan.preset)
    "wan-vace": Family("transformer_wan_vace", "WanVACETransformer3DModel", _wan,
                       _wan.WanRadialProcessor, "wan-vace"),
    "skyreels-v2": Family("transformer_skyreels_v2", "SkyReelsV2Transformer3DModel", _wan,
                          _wan.WanRadialProcessor, "skyreels-v2"),
    "hunyuan": Family("transformer_hunyuan_video", "HunyuanVideoTransformer3DModel", _hunyuan,
                      _hunyuan.HunyuanRadialProcessor, "hunyuan"),
    "mochi": Family("transformer_mochi", "MochiTransformer3DModel", _mochi,
                    _mochi.MochiRadialProcessor, "mochi"),
    "ltx": Family("transformer_ltx", "LTXVideoTransformer3DModel", _ltx, _ltx.LTXRadialProcessor,
                  "ltx-video"),
}


def _family(transformer):
    """The FAMILIES key of a supported transformer, else None; of several (a subclass of a
    supported class), the most specific."""
    mro = type(transformer).__mro__
    best = None
    for name, family in FAMILIES.items():
        cls = family.diffusers_class()
        if cls is not None and cls in mro and (best is None or mro.index(cls) < best[1]):
            best = (name, mro.index(cls))
    return best[0] if best else None


def preset_of(transformer) -> str:
    """The model preset of a supported transformer, from its class and config (e.g.
    "wan2.2-ti2v-5b" for the Wan transformer of 48 latent channels, "hunyuan-i2v" for
    HunyuanVideo with an image_condition_type)."""
    family = _family(transformer)
    if family is None:
        raise invalid("transformer", "a supported diffusers transformer", type(transformer).__name__)
    return FAMILIES[family].preset_of(transformer)


def _transformers(target):
    """The supported transformers of a model or pipeline (Wan2.2 A14B has two experts)."""
    if _family(target):
        return [target], None
    found = [t for t in (getattr(target, "transformer", None), getattr(target, "transformer_2", None))
             if t is not None and _family(t)]
    if not found:
        raise invalid("model_or_pipeline",
                      "a supported transformer (" + ", ".join(f.class_name for f in FAMILIES.values())
                      + ") or a pipeline holding one", type(target).__name__)
    families = {_family(t) for t in found}
    if len(families) > 1:  # pragma: no cover - no such pipeline exists
        raise invalid("model_or_pipeline", "transformers of one family", sorted(families))
    return found, target


def _arg(args, kwargs, name, index):
    return kwargs[name] if name in kwargs else (args[index] if len(args) > index else None)


def _set_processor(attention, processor):
    # MochiAttention has no set_processor; it calls self.processor.
    if hasattr(attention, "set_processor"):
        attention.set_processor(processor)
    else:
        attention.processor = processor


def _make_pre_hook(transformer, family, state: State):
    module = FAMILIES[family].module
    call_geometry = getattr(module, "call_geometry", None)
    timestep_arg = getattr(module, "TIMESTEP_ARG", 1)
    rise = -1.0 if getattr(module, "TIMESTEPS_RISE", False) else 1.0

    def pre_hook(_module, args, kwargs):
        if call_geometry is not None:
            state.geometry = call_geometry(transformer, args, kwargs)
        else:
            hidden_states = kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]
            state.geometry = module.latent_geometry(transformer, hidden_states)
        if compiling():
            # Host reads would break the graph: the step counter and Hunyuan's valid text
            # lengths keep what was last set (see the module doc).
            if family == "hunyuan":
                state.text_valid = None
            return None
        if family == "hunyuan":
            mask = _arg(args, kwargs, "encoder_attention_mask", 3)
            state.text_valid = _hunyuan.text_valid(mask) if mask is not None else None
        if state.counting in ("timestep", "noise"):
            timestep = _arg(args, kwargs, "timestep", timestep_arg)
            # Per-token (Wan2.2-TI2V's image frame at 0) or per-frame (diffusion forcing)
            # timesteps: the noisiest token's.
            t = float(timestep.float().max()) if hasattr(timestep, "float") else float(timestep)
            if state.counting == "noise":
                state.observe_noise(t)
            else:
                state.observe_timestep(rise * t)  # Mochi's rise: counted as falling
        return None

    return pre_hook


def _wrap_scheduler(pipeline, state: State):
    """Counts denoising steps at the scheduler: set_timesteps starts a generation, each
    step() ends one denoising step. Instance attributes, removed again by remove()."""
    scheduler = getattr(pipeline, "scheduler", None)
    if scheduler is None or not hasattr(scheduler, "step") or not hasattr(scheduler, "set_timesteps"):
        return None
    set_timesteps, step = scheduler.set_timesteps, scheduler.step

    # functools.wraps: pipelines read set_timesteps' signature (e.g. HunyuanVideo's
    # retrieve_timesteps asks whether it takes sigmas).
    @functools.wraps(set_timesteps)
    def counted_set_timesteps(*args, **kwargs):
        state.new_generation()
        return set_timesteps(*args, **kwargs)

    @functools.wraps(step)
    def counted_step(*args, **kwargs):
        result = step(*args, **kwargs)
        state.set_step(state.step + 1)
        return result

    scheduler.set_timesteps = counted_set_timesteps
    scheduler.step = counted_step
    return scheduler


def _diffusion_forcing(pipeline) -> bool:
    """SkyReels-V2's diffusion-forcing pipelines (text, image and video to video)."""
    return "DiffusionForcing" in type(pipeline).__name__


def apply(model_or_pipeline, dense_layers=None, dense_timesteps=None, decay_factor=None,
          block_size=128, pattern="radial", decay_adjacent=False, model=None, precision="native"):
    """Switches the self-attention of a supported transformer (Wan, Wan VACE, SkyReels-V2,
    HunyuanVideo, Mochi-1, LTX-Video; or of the transformers of a pipeline) to Radial
    Attention. Applying again replaces the settings.

    model: the preset (radial_attention.model_preset) whose mask rules and defaults apply;
    by default the one of the transformer (docs/models.md). dense_layers: the first blocks
    keep dense (stock) attention (VACE's control blocks count as the layer they feed).
    dense_timesteps: the first denoising steps keep it.
    decay_factor: how fast the band narrows with frame distance. Each defaults to the
    preset's (e.g. Wan 1 layer, 12 steps, 0.2; HunyuanVideo 0.95; Mochi-1 16 steps, 0.95; the
    paper uses 1.0 for longer Wan videos, 0.8 for Wan2.2). block_size: 128 or 64. pattern:
    "radial"; "dense" runs every block through the radial kernel (a check of the kernel against stock attention); "stock" runs
    diffusers' own attention everywhere (a baseline). ("full", the old name of "dense", still
    works with a DeprecationWarning.) precision: "native", or "fp8" for the FP8 forward in the
    radial layers (H100/H200; inference only: refused when a gradient may follow; the dense
    layers and warm-up steps stay stock). Returns the State shared by the processors.
    """
    transformers, pipeline = _transformers(model_or_pipeline)
    family = _family(transformers[0])
    settings = Settings.make(model or FAMILIES[family].preset_of(transformers[0]), dense_layers,
                             dense_timesteps, decay_factor, block_size, pattern, decay_adjacent,
                             precision)
    remove(model_or_pipeline)
    state = State(settings, "timestep")
    scheduler = None
    if pipeline is not None and _diffusion_forcing(pipeline):
        # These deep-copy their scheduler once per frame: wrapping its methods would make the
        # copies step the original. Steps come from the noise levels instead.
        state.counting = "noise"
        state.schedule = lambda: getattr(pipeline.scheduler, "timesteps", None)
    elif pipeline is not None:
        scheduler = _wrap_scheduler(pipeline, state)
        if scheduler is not None:
            state.counting = "scheduler"
    module, processor_class = FAMILIES[family].module, FAMILIES[family].processor
    for transformer in transformers:
        originals = []
        for layer, attention in module.self_attentions(transformer):
            originals.append((attention, attention.processor))
            _set_processor(attention, processor_class(attention.processor, layer, state))
        hook = transformer.register_forward_pre_hook(_make_pre_hook(transformer, family, state),
                                                     with_kwargs=True)
        setattr(transformer, _ATTR, {"state": state, "originals": originals, "hook": hook,
                                     "scheduler": scheduler})
    return state


def remove(model_or_pipeline) -> None:
    """Restores the stock attention processors; a no-op where apply() was not called."""
    transformers, _ = _transformers(model_or_pipeline)
    for transformer in transformers:
        record = getattr(transformer, _ATTR, None)
        if record is None:
            continue
        for attention, original in record["originals"]:
            _set_processor(attention, original)
        record["hook"].remove()
        scheduler = record["scheduler"]
        if scheduler is not None:
            for name in ("set_timesteps", "step"):
                scheduler.__dict__.pop(name, None)
        delattr(transformer, _ATTR)


def state(model_or_pipeline) -> State:
    """The State of an applied model: step, warmup, geometry, attention_seconds, calls."""
    transformers, _ = _transformers(model_or_pipeline)
    record = getattr(transformers[0], _ATTR, None)
    if record is None:
        raise invalid("model_or_pipeline", "a model or pipeline that apply() patched",
                      type(model_or_pipeline).__name__)
    return record["state"]


def set_step(model_or_pipeline, step: int) -> None:
    """Sets the denoising step index by hand (e.g. for a compiled bare transformer)."""
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise invalid("step", "an int >= 0", repr(step))
    state(model_or_pipeline).set_step(step)


__all__ = ["apply", "preset_of", "remove", "set_step", "state"]
