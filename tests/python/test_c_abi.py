"""The C ABI itself (through ctypes): statuses, per-thread messages, null pointers."""

import ctypes
import threading

import torch

from radial_attention import _lib


def last_error():
    lib = _lib.lib()
    return lib.radial_last_error().decode(), lib.radial_last_error_argument().decode()


def test_version_and_build_flags():
    lib = _lib.lib()
    assert lib.radial_abi_version() == _lib.ABI_VERSION
    assert lib.radial_version().decode().count(".") == 2
    assert lib.radial_built_with_cuda() in (0, 1)
    assert lib.radial_cuda_available() in (0, 1)


def test_null_pointers_are_named():
    lib = _lib.lib()
    geometry = _lib.Geometry(2, 64, 0, -1)
    assert lib.radial_plan_create(ctypes.byref(geometry), None, None) == _lib.INVALID_ARGUMENT
    assert last_error() == ("radial: out: expected a non-null pointer, got NULL", "out")
    handle = ctypes.c_void_p()
    assert lib.radial_plan_create(ctypes.byref(geometry), None, ctypes.byref(handle)) == _lib.INVALID_ARGUMENT
    assert last_error()[1] == "spec" and not handle.value
    assert lib.radial_plan_get_info(None, ctypes.byref(_lib.PlanInfo())) == _lib.INVALID_ARGUMENT
    assert last_error()[1] == "plan"
    lib.radial_plan_destroy(None)  # a no-op, like free(NULL)


def test_enums_out_of_range_are_named():
    lib = _lib.lib()
    geometry = _lib.Geometry(2, 64, 0, -1)
    handle = ctypes.c_void_p()
    spec = _lib.PlanSpec(0, len(_lib.MODELS), 1.0, 64, 0)
    assert lib.radial_plan_create(ctypes.byref(geometry), ctypes.byref(spec), ctypes.byref(handle)) == _lib.INVALID_ARGUMENT
    assert last_error()[1] == "model"
    spec = _lib.PlanSpec(0, 0, 1.0, 64, 0)
    assert lib.radial_plan_create(ctypes.byref(geometry), ctypes.byref(spec), ctypes.byref(handle)) == _lib.OK
    try:
        q = torch.randn(1, 128, 1, 64)
        view = _lib.Tensor(q.data_ptr(), 9, 0, 0, 0, 1, 128, 1, 64, 128 * 64, 64, 64)
        status = lib.radial_attention(handle, ctypes.byref(view), ctypes.byref(view),
                                      ctypes.byref(view), ctypes.byref(view), None, 0.0, 0, None)
        assert status == _lib.INVALID_ARGUMENT
        assert last_error()[1] == "q.dtype"
        view.dtype, view.device = _lib.DTYPE_F32, 5
        status = lib.radial_attention(handle, ctypes.byref(view), ctypes.byref(view),
                                      ctypes.byref(view), ctypes.byref(view), None, 0.0, 0, None)
        assert last_error()[1] == "q.device"
    finally:
        lib.radial_plan_destroy(handle)


def test_messages_are_per_thread():
    lib = _lib.lib()
    geometry = _lib.Geometry(0, 64, 0, -1)  # frames 0: fails
    spec = _lib.PlanSpec(0, 0, 1.0, 64, 0)
    handle = ctypes.c_void_p()
    assert lib.radial_plan_create(ctypes.byref(geometry), ctypes.byref(spec), ctypes.byref(handle)) == _lib.INVALID_ARGUMENT
    assert last_error()[1] == "frames"
    seen = []

    def other():
        bad = _lib.PlanSpec(0, 0, 1.0, 96, 0)
        good = _lib.Geometry(2, 64, 0, -1)
        lib.radial_plan_create(ctypes.byref(good), ctypes.byref(bad), ctypes.byref(ctypes.c_void_p()))
        seen.append(last_error()[1])

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert seen == ["block_size"]
    assert last_error()[1] == "frames"  # this thread's message is untouched


def test_kernel_choice_entry():
    """radial_attention_with_choice: NULL runs what radial_attention runs; a choice names a
    CUDA kernel, so CPU tensors refuse one; bad text is named by its field."""
    lib = _lib.lib()
    geometry = _lib.Geometry(2, 64, 0, -1)
    spec = _lib.PlanSpec(0, 0, 1.0, 64, 0)
    handle = ctypes.c_void_p()
    assert lib.radial_plan_create(ctypes.byref(geometry), ctypes.byref(spec), ctypes.byref(handle)) == _lib.OK
    try:
        q, k, v = (torch.randn(1, 128, 2, 16) for _ in range(3))
        outs = [torch.full_like(q, float("nan")) for _ in range(2)]
        views = [_lib.Tensor(t.data_ptr(), _lib.DTYPE_F32, _lib.DEVICE_CPU, 0, 0, 1, 128, 2, 16,
                             128 * 32, 32, 16) for t in (q, k, v, *outs)]
        refs = [ctypes.byref(x) for x in views]
        assert lib.radial_attention(handle, *refs[:4], None, 0.0, 1, None) == _lib.OK
        assert lib.radial_attention_with_choice(handle, *refs[:3], refs[4], None, 0.0, 1, None,
                                                None) == _lib.OK
        assert torch.equal(outs[0], outs[1]) and not outs[0].isnan().any()
        assert lib.radial_attention_with_choice(handle, *refs[:4], None, 0.0, 1, None,
                                                b"family=portable") == _lib.INVALID_ARGUMENT
        assert last_error()[1] == "choice"
        assert lib.radial_attention_with_choice(handle, *refs[:4], None, 0.0, 1, None,
                                                b"family=volta") == _lib.INVALID_ARGUMENT
        assert last_error()[1] == "choice.family"
        assert "portable or hopper" in last_error()[0]
        assert lib.radial_attention_with_choice(handle, *refs[:4], None, 0.0, 1, None,
                                                b"family=hopper,tile=eight_warps") == _lib.INVALID_ARGUMENT
        assert last_error()[1] == "choice.tile"
        text = ctypes.create_string_buffer(64)
        assert lib.radial_kernel_choice(handle, refs[0], text, len(text)) == _lib.OK
        assert text.value == b"cpu"
        assert lib.radial_kernel_choice(handle, refs[0], text, 3) == _lib.INVALID_ARGUMENT
        assert last_error()[1] == "size"
    finally:
        lib.radial_plan_destroy(handle)


def test_precision_entry():
    """radial_attention_with_precision: NATIVE is radial_attention; FP8 on CPU tensors is refused
    naming options.precision; an unknown precision is named."""
    lib = _lib.lib()
    geometry = _lib.Geometry(2, 64, 0, -1)
    spec = _lib.PlanSpec(0, 0, 1.0, 64, 0)
    handle = ctypes.c_void_p()
    assert lib.radial_plan_create(ctypes.byref(geometry), ctypes.byref(spec), ctypes.byref(handle)) == _lib.OK
    try:
        q, k, v = (torch.randn(1, 128, 2, 16) for _ in range(3))
        outs = [torch.full_like(q, float("nan")) for _ in range(2)]
        views = [_lib.Tensor(t.data_ptr(), _lib.DTYPE_F32, _lib.DEVICE_CPU, 0, 0, 1, 128, 2, 16,
                             128 * 32, 32, 16) for t in (q, k, v, *outs)]
        refs = [ctypes.byref(x) for x in views]
        native, fp8 = _lib.PRECISIONS["native"], _lib.PRECISIONS["fp8"]
        assert lib.radial_attention(handle, *refs[:4], None, 0.0, 1, None) == _lib.OK
        assert lib.radial_attention_with_precision(handle, *refs[:3], refs[4], None, 0.0, 1,
                                                   None, native) == _lib.OK
        assert torch.equal(outs[0], outs[1]) and not outs[0].isnan().any()
        assert lib.radial_attention_with_precision(handle, *refs[:3], refs[4], None, 0.0, 1,
                                                   None, fp8) == _lib.INVALID_ARGUMENT
        assert last_error()[1] == "options.precision"
        assert "native on the CPU backend" in last_error()[0]
        assert lib.radial_attention_with_precision(handle, *refs[:4], None, 0.0, 1, None,
                                                   7) == _lib.INVALID_ARGUMENT
        assert last_error() == ("radial: precision: expected RADIAL_PRECISION_NATIVE (0) or "
                                "RADIAL_PRECISION_FP8 (1), got 7", "precision")
    finally:
        lib.radial_plan_destroy(handle)
