"""Loads libradial_c (the library's C ABI) with ctypes and mirrors its structs.

Binding through a C ABI rather than against libtorch is what lets one build of this package
work with every PyTorch release: nothing here depends on PyTorch's C++ symbols.
"""

import ctypes
import os
import sys
import threading

from ._errors import RadialError, RadialRuntimeError

ABI_VERSION = 3

# Numbers of the C enums (include/radial/c_api.h).
OK, INVALID_ARGUMENT, OUT_OF_MEMORY, RUNTIME = 0, 1, 2, 3
DTYPE_F32, DTYPE_BF16, DTYPE_F16 = 0, 1, 2
DEVICE_CPU, DEVICE_CUDA = 0, 1
# The model presets (RADIAL_MODEL_*): appended, never renumbered. Their sizes and defaults come
# from the library (radial_attention.plan.model_preset).
MODELS = {"wan": 0, "hunyuan": 1, "mochi": 2, "ltx-video": 3, "wan2.2-ti2v-5b": 4,
          "wan-vace": 5, "hunyuan-i2v": 6, "skyreels-v2": 7}
PATTERNS = {"radial": 0, "dense": 1}
PRECISIONS = {"native": 0, "fp8": 1}  # RADIAL_PRECISION_*


class Geometry(ctypes.Structure):
    _fields_ = [
        ("frames", ctypes.c_int64),
        ("tokens_per_frame", ctypes.c_int64),
        ("text_tokens", ctypes.c_int64),
        ("text_valid", ctypes.c_int64),
    ]


class PlanSpec(ctypes.Structure):
    _fields_ = [
        ("pattern", ctypes.c_int32),
        ("model", ctypes.c_int32),
        ("decay_factor", ctypes.c_double),
        ("block_size", ctypes.c_int32),
        ("decay_adjacent", ctypes.c_int32),
    ]


class ModelPreset(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("description", ctypes.c_char_p),
        ("temporal_compression", ctypes.c_int64),
        ("spatial_compression", ctypes.c_int64),
        ("patch_size", ctypes.c_int64),
        ("attention_sink", ctypes.c_int32),
        ("dense_layers", ctypes.c_int32),
        ("dense_timesteps", ctypes.c_int32),
        ("reserved", ctypes.c_int32),
        ("decay_factor", ctypes.c_double),
    ]


class PlanInfo(ctypes.Structure):
    _fields_ = [
        ("seq_len", ctypes.c_int64),
        ("key_limit", ctypes.c_int64),
        ("block_rows", ctypes.c_int32),
        ("block_cols", ctypes.c_int32),
        ("block_size", ctypes.c_int32),
        ("reserved", ctypes.c_int32),
        ("kept_blocks", ctypes.c_int64),
        ("total_blocks", ctypes.c_int64),
        ("rows_given_diagonal", ctypes.c_int64),
        ("density", ctypes.c_double),
        ("flops_per_head_dim", ctypes.c_double),
        ("dense_flops_per_head_dim", ctypes.c_double),
    ]


class Tensor(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("dtype", ctypes.c_int32),
        ("device", ctypes.c_int32),
        ("device_index", ctypes.c_int32),
        ("reserved", ctypes.c_int32),
        ("batch", ctypes.c_int64),
        ("seq", ctypes.c_int64),
        ("heads", ctypes.c_int64),
        ("dim", ctypes.c_int64),
        ("stride_batch", ctypes.c_int64),
        ("stride_seq", ctypes.c_int64),
        ("stride_head", ctypes.c_int64),
    ]


_P = ctypes.POINTER
_SIGNATURES = {
    "radial_abi_version": (ctypes.c_int32, []),
    "radial_version": (ctypes.c_char_p, []),
    "radial_built_with_cuda": (ctypes.c_int32, []),
    "radial_cuda_available": (ctypes.c_int32, []),
    "radial_last_error": (ctypes.c_char_p, []),
    "radial_last_error_argument": (ctypes.c_char_p, []),
    "radial_geometry_from_video": (
        ctypes.c_int,
        [ctypes.c_int32, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64,
         ctypes.c_int64, _P(Geometry)],
    ),
    "radial_model_preset_get": (ctypes.c_int, [ctypes.c_int32, _P(ModelPreset)]),
    "radial_plan_create": (ctypes.c_int, [_P(Geometry), _P(PlanSpec), _P(ctypes.c_void_p)]),
    "radial_plan_create_dense": (ctypes.c_int, [_P(Geometry), ctypes.c_int32, _P(ctypes.c_void_p)]),
    "radial_plan_destroy": (None, [ctypes.c_void_p]),
    "radial_plan_get_info": (ctypes.c_int, [ctypes.c_void_p, _P(PlanInfo)]),
    "radial_plan_csr": (ctypes.c_int, [ctypes.c_void_p, _P(_P(ctypes.c_int32)), _P(_P(ctypes.c_int32))]),
    "radial_plan_csc": (ctypes.c_int, [ctypes.c_void_p, _P(_P(ctypes.c_int32)), _P(_P(ctypes.c_int32))]),
    "radial_attention": (
        ctypes.c_int,
        [ctypes.c_void_p, _P(Tensor), _P(Tensor), _P(Tensor), _P(Tensor), ctypes.c_void_p,
         ctypes.c_double, ctypes.c_int32, ctypes.c_void_p],
    ),
    "radial_attention_backward": (
        ctypes.c_int,
        [ctypes.c_void_p, _P(Tensor), _P(Tensor), _P(Tensor), _P(Tensor), _P(Tensor),
         ctypes.c_void_p, _P(Tensor), _P(Tensor), _P(Tensor), ctypes.c_double, ctypes.c_int32,
         ctypes.c_int32, ctypes.c_void_p],
    ),
    "radial_attention_with_precision": (
        ctypes.c_int,
        [ctypes.c_void_p, _P(Tensor), _P(Tensor), _P(Tensor), _P(Tensor), ctypes.c_void_p,
         ctypes.c_double, ctypes.c_int32, ctypes.c_void_p, ctypes.c_int32],
    ),
    # For benchmarks and tests: a kernel named by its fields (docs/dispatch.md).
    "radial_attention_with_choice": (
        ctypes.c_int,
        [ctypes.c_void_p, _P(Tensor), _P(Tensor), _P(Tensor), _P(Tensor), ctypes.c_void_p,
         ctypes.c_double, ctypes.c_int32, ctypes.c_void_p, ctypes.c_char_p],
    ),
    "radial_attention_backward_with_choice": (
        ctypes.c_int,
        [ctypes.c_void_p, _P(Tensor), _P(Tensor), _P(Tensor), _P(Tensor), _P(Tensor),
         ctypes.c_void_p, _P(Tensor), _P(Tensor), _P(Tensor), ctypes.c_double, ctypes.c_int32,
         ctypes.c_void_p, ctypes.c_char_p],
    ),
    "radial_kernel_choice": (
        ctypes.c_int, [ctypes.c_void_p, _P(Tensor), ctypes.c_char_p, ctypes.c_int32]),
}

_lock = threading.Lock()
_lib = None


def _library_path() -> str:
    override = os.environ.get("RADIAL_C_LIBRARY")
    if override:
        return override
    name = "radial_c.dll" if sys.platform == "win32" else (
        "libradial_c.dylib" if sys.platform == "darwin" else "libradial_c.so")
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), name)


def lib():
    """The loaded library, its functions typed; loaded once."""
    global _lib
    if _lib is not None:
        return _lib
    with _lock:
        if _lib is not None:
            return _lib
        # PyTorch loads its CUDA runtime first, so the library links against the same copy.
        import torch  # noqa: F401

        path = _library_path()
        if not os.path.exists(path):
            raise ImportError(
                f"radial_attention: the compiled library is missing at {path}; install the package "
                "with `pip install .` (which builds it) or point RADIAL_C_LIBRARY at libradial_c.so")
        handle = ctypes.CDLL(path)
        for name, (restype, argtypes) in _SIGNATURES.items():
            function = getattr(handle, name)
            function.restype = restype
            function.argtypes = argtypes
        version = handle.radial_abi_version()
        if version != ABI_VERSION:
            raise ImportError(
                f"radial_attention: {path} has C ABI version {version}, this package expects "
                f"{ABI_VERSION}; reinstall the package so both come from one build")
        _lib = handle
    return _lib


def c_int(value: int, argument: str, bits: int) -> int:
    """`value` if it fits the C ABI's signed `bits`-bit integer, else a RadialError naming the
    argument: ctypes would silently keep only the low bits (2**64 + 2 frames would plan 2)."""
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if not low <= value <= high:
        raise RadialError(f"radial: {argument}: expected an integer in {low}..{high} "
                          f"(the C ABI's int{bits}_t), got {value}", argument)
    return value


def check(status: int) -> None:
    """Raises the Python exception that matches a failed call's status and message."""
    if status == OK:
        return
    handle = lib()
    message = (handle.radial_last_error() or b"").decode("utf-8", "replace")
    argument = (handle.radial_last_error_argument() or b"").decode("utf-8", "replace")
    if status == INVALID_ARGUMENT:
        raise RadialError(message, argument)
    if status == OUT_OF_MEMORY:
        raise MemoryError(message)
    raise RadialRuntimeError(message or f"radial: call failed with status {status}")
