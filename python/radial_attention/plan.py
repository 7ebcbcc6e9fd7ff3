"""Plans: the block-sparse layout of one attention, made by the C++ planner and cached.

A plan depends only on the geometry and the spec, never on a device: the CUDA backend
uploads it to each GPU on first use and keeps that copy inside the plan, so one cached Plan
serves every device and every layer of a model.
"""

import collections
import ctypes
import math
import threading
from dataclasses import dataclass

from . import _lib
from ._errors import RadialError, invalid

_CACHE_SIZE = 128


@dataclass(frozen=True)
class PlanKey:
    """Everything a plan is made from; equal keys give identical plans."""

    frames: int
    tokens_per_frame: int
    text_tokens: int = 0
    text_valid: int = -1
    model: str = "wan"
    pattern: str = "radial"
    decay_factor: float = 1.0
    block_size: int = 128
    decay_adjacent: bool = False

    def op_args(self):
        """The plan as the custom op takes it: plain ints and a float, which torch.compile
        treats as constants (a Plan object could not enter a traced graph)."""
        geometry = [self.frames, self.tokens_per_frame, self.text_tokens, self.text_valid]
        spec = [_lib.MODELS[self.model], _lib.PATTERNS[self.pattern], self.block_size,
                int(self.decay_adjacent)]
        return geometry, spec, float(self.decay_factor)

    @staticmethod
    def from_op_args(geometry, spec, decay_factor) -> "PlanKey":
        if len(geometry) != 4:
            raise invalid("geometry", "4 ints [frames, tokens_per_frame, text_tokens, text_valid]",
                          list(geometry))
        if len(spec) != 4:
            raise invalid("spec", "4 ints [model, pattern, block_size, decay_adjacent]", list(spec))
        models = {v: k for k, v in _lib.MODELS.items()}
        patterns = {v: k for k, v in _lib.PATTERNS.items()}
        if spec[0] not in models:
            raise invalid("model", "a model code 0.." + str(len(models) - 1) + " ("
                          + ", ".join(f"{v} {k}" for k, v in _lib.MODELS.items()) + ")", spec[0])
        if spec[1] not in patterns:
            raise invalid("pattern", "0 (radial) or 1 (dense)", spec[1])
        return PlanKey(int(geometry[0]), int(geometry[1]), int(geometry[2]), int(geometry[3]),
                       models[spec[0]], patterns[spec[1]], float(decay_factor), int(spec[2]),
                       bool(spec[3]))


class Plan:
    """One attention's block layout. Made by :func:`plan`; do not construct directly."""

    def __init__(self, key: PlanKey):
        library = _lib.lib()
        # Every key reaches here (also through the op's plain ints), so the C ranges are
        # checked here, before ctypes could truncate a value.
        geometry = _lib.Geometry(*(_lib.c_int(getattr(key, name), name, 64) for name in
                                   ("frames", "tokens_per_frame", "text_tokens", "text_valid")))
        handle = ctypes.c_void_p()
        spec = _lib.PlanSpec(_lib.PATTERNS[key.pattern], _lib.MODELS[key.model],
                             key.decay_factor, _lib.c_int(key.block_size, "block_size", 32),
                             int(key.decay_adjacent))
        _lib.check(library.radial_plan_create(ctypes.byref(geometry), ctypes.byref(spec),
                                              ctypes.byref(handle)))
        self._handle = handle
        self._library = library
        self.key = key
        info = _lib.PlanInfo()
        _lib.check(library.radial_plan_get_info(handle, ctypes.byref(info)))
        self.seq_len = info.seq_len
        self.key_limit = info.key_limit
        self.block_rows = info.block_rows
        self.block_cols = info.block_cols
        self.block_size = info.block_size
        self.kept_blocks = info.kept_blocks
        self.total_blocks = info.total_blocks
        self.rows_given_diagonal = info.rows_given_diagonal
        self.density = info.density
        self.flops_per_head_dim = info.flops_per_head_dim
        self.dense_flops_per_head_dim = info.dense_flops_per_head_dim

    def __del__(self):
        handle = getattr(self, "_handle", None)
        if handle is not None and handle.value:
            self._library.radial_plan_destroy(handle)
            self._handle = None

    @property
    def handle(self) -> ctypes.c_void_p:
        return self._handle

    @property
    def flops_ratio(self) -> float:
        d = self.dense_flops_per_head_dim
        return self.flops_per_head_dim / d if d > 0 else 0.0

    def _arrays(self, getter, offsets_len):
        import torch

        offsets = ctypes.POINTER(ctypes.c_int32)()
        indices = ctypes.POINTER(ctypes.c_int32)()
        _lib.check(getter(self._handle, ctypes.byref(offsets), ctypes.byref(indices)))
        off = torch.tensor(offsets[:offsets_len], dtype=torch.int32)
        idx = torch.tensor(indices[: self.kept_blocks] if self.kept_blocks else [],
                           dtype=torch.int32)
        return off, idx

    def csr(self):
        """(row_offset [block_rows + 1], col_index [kept_blocks]) as int32 CPU tensors."""
        return self._arrays(self._library.radial_plan_csr, self.block_rows + 1)

    def csc(self):
        """(col_offset [block_cols + 1], row_index [kept_blocks]) as int32 CPU tensors."""
        return self._arrays(self._library.radial_plan_csc, self.block_cols + 1)

    def block_mask(self):
        """The kept blocks as a bool tensor [block_rows, block_cols]."""
        import torch

        offsets, columns = self.csr()
        mask = torch.zeros(self.block_rows, self.block_cols, dtype=torch.bool)
        rows = torch.repeat_interleave(torch.arange(self.block_rows), (offsets[1:] - offsets[:-1]).long())
        mask[rows, columns.long()] = True
        return mask

    def token_mask(self):
        """The mask this plan applies, token by token: bool [seq_len, seq_len] (query, key).
        Meant for tests and pictures; it is O(seq_len^2)."""
        b = self.block_size
        mask = self.block_mask().repeat_interleave(b, 0).repeat_interleave(b, 1)
        mask = mask[: self.seq_len, : self.seq_len].clone()
        mask[:, self.key_limit:] = False
        return mask

    def __repr__(self) -> str:
        k = self.key
        return (f"Plan(frames={k.frames}, tokens_per_frame={k.tokens_per_frame}, "
                f"text_tokens={k.text_tokens}, text_valid={k.text_valid}, model={k.model!r}, "
                f"pattern={k.pattern!r}, decay_factor={k.decay_factor}, block_size={k.block_size}, "
                f"seq_len={self.seq_len}, kept_blocks={self.kept_blocks}/{self.total_blocks}, "
                f"density={self.density:.4f})")


_cache = collections.OrderedDict()
_cache_lock = threading.Lock()


def get(key: PlanKey) -> Plan:
    """The cached plan for `key`, made on first use (least recently used plans are dropped
    past a bound, so changing resolutions never grows memory without limit)."""
    with _cache_lock:
        found = _cache.get(key)
        if found is not None:
            _cache.move_to_end(key)
            return found
    made = Plan(key)  # outside the lock: planning a large geometry takes a moment
    with _cache_lock:
        found = _cache.setdefault(key, made)
        _cache.move_to_end(key)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return found


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


def _as_int(value, argument, bits=64):
    """`value` as a Python int that fits the C ABI's int64_t (int32_t with bits=32)."""
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            import numbers

            if isinstance(value, numbers.Integral) and not isinstance(value, bool):
                return _lib.c_int(int(value), argument, bits)
        except ImportError:  # pragma: no cover
            pass
        raise invalid(argument, "an int", repr(value))
    return _lib.c_int(value, argument, bits)


def _model_names() -> str:
    names = [f'"{name}"' for name in _lib.MODELS]
    return ", ".join(names[:-1]) + " or " + names[-1]


def _check_model(model) -> None:
    if not isinstance(model, str) or model not in _lib.MODELS:
        raise invalid("model", _model_names(), repr(model))


@dataclass(frozen=True)
class ModelPreset:
    """A model's VAE and patch sizes and its default mask rules (docs/models.md), as the
    library's preset table has them."""

    name: str
    description: str
    temporal_compression: int  # video frames = t * k + 1 -> k + 1 latent frames
    spatial_compression: int   # VAE pixels per latent in height and width
    patch_size: int            # transformer patch in height and width
    attention_sink: bool       # every query keeps the whole first latent frame
    decay_factor: float
    dense_layers: int
    dense_timesteps: int

    @property
    def pixels_per_token(self) -> int:
        return self.spatial_compression * self.patch_size


def model_preset(model: str) -> ModelPreset:
    """The preset of a model name ("wan", "hunyuan", "mochi", "ltx-video", ...)."""
    _check_model(model)
    out = _lib.ModelPreset()
    _lib.check(_lib.lib().radial_model_preset_get(_lib.MODELS[model], ctypes.byref(out)))
    return ModelPreset(out.name.decode(), out.description.decode(), out.temporal_compression,
                       out.spatial_compression, out.patch_size, bool(out.attention_sink),
                       out.decay_factor, out.dense_layers, out.dense_timesteps)


def geometry_from_video(model: str, video_frames: int, height: int, width: int,
                        text_tokens: int = 0, text_valid: int = -1):
    """(frames, tokens_per_frame) of the latent video for a model's VAE and patch size
    (its preset); sizes the model cannot take raise RadialError naming the nearest ones."""
    _check_model(model)
    out = _lib.Geometry()
    _lib.check(_lib.lib().radial_geometry_from_video(
        _lib.MODELS[model], _as_int(video_frames, "video_frames"), _as_int(height, "height"),
        _as_int(width, "width"), _as_int(text_tokens, "text_tokens"),
        _as_int(text_valid, "text_valid"), ctypes.byref(out)))
    return out.frames, out.tokens_per_frame


def plan_for_video(model: str, video_frames: int, height: int, width: int, *, text_tokens=0,
                   text_valid=-1, decay_factor=None, block_size=128, pattern="radial",
                   decay_adjacent=False) -> Plan:
    """The plan of one attention of ``model`` at a video size in pixels, with the model's
    default decay factor unless one is given (e.g. ``plan_for_video("mochi", 163, 480, 848,
    text_tokens=256)``)."""
    if decay_factor is None:
        decay_factor = model_preset(model).decay_factor
    return plan(video_frames=video_frames, height=height, width=width, text_tokens=text_tokens,
                text_valid=text_valid, model=model, decay_factor=decay_factor,
                block_size=block_size, pattern=pattern, decay_adjacent=decay_adjacent)


def plan(frames=None, tokens_per_frame=None, *, video_frames=None, height=None, width=None,
         text_tokens=0, text_valid=-1, model="wan", decay_factor=1.0, block_size=128,
         pattern="radial", decay_adjacent=False) -> Plan:
    """The block-sparse plan of one attention, cached per geometry and spec.

    Give the latent geometry (``frames``, ``tokens_per_frame``: h * w after patchify) or the
    video one (``video_frames``, ``height``, ``width`` in pixels, turned into latent sizes by
    the ``model``'s preset). ``text_tokens`` are appended after the video tokens (joint
    attention: HunyuanVideo, Mochi-1); keys past ``text_valid`` of them are padding (-1: all
    valid). ``model`` is a preset name (``model_preset``): it sets the attention-sink rule and,
    for pixel sizes, the VAE and patch arithmetic.
    ``pattern="dense"`` keeps every block (for dense warm-up steps and layers).
    """
    _check_model(model)
    if pattern not in _lib.PATTERNS:
        raise invalid("pattern", '"radial" or "dense"', repr(pattern))
    if video_frames is not None or height is not None or width is not None:
        if frames is not None or tokens_per_frame is not None:
            raise RadialError(
                "radial: geometry: expected either frames and tokens_per_frame (latent) or "
                "video_frames, height and width (pixels), got both", "geometry")
        if video_frames is None or height is None or width is None:
            raise invalid("video_frames, height, width", "all three together",
                          f"video_frames={video_frames}, height={height}, width={width}")
        frames, tokens_per_frame = geometry_from_video(model, video_frames, height, width,
                                                       text_tokens, text_valid)
    if frames is None or tokens_per_frame is None:
        raise invalid("frames, tokens_per_frame", "both (or video_frames, height, width)",
                      f"frames={frames}, tokens_per_frame={tokens_per_frame}")
    try:
        decay = float(decay_factor)
    except (TypeError, ValueError):
        raise invalid("decay_factor", "a number > 0", repr(decay_factor)) from None
    if not math.isfinite(decay) or decay <= 0:
        # The C++ planner checks this too; a NaN must not reach the cache key (NaN != NaN).
        raise invalid("decay_factor", "a finite number > 0", decay_factor)
    key = PlanKey(_as_int(frames, "frames"), _as_int(tokens_per_frame, "tokens_per_frame"),
                  _as_int(text_tokens, "text_tokens"), _as_int(text_valid, "text_valid"), model,
                  pattern, decay, _as_int(block_size, "block_size", 32), bool(decay_adjacent))
    return get(key)
