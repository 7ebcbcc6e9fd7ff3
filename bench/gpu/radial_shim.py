"""The library's public C ABI (libradial_c, through the radial_attention package's ctypes
declarations) for the scripts in bench/gpu and tests/gpu: plans and their CSR, one attention
call on torch tensors with an optional kernel choice named by its fields
("family=hopper,schedule=serial"; docs/dispatch.md), and a timing loop with CUDA events.

Shim(BUILD_DIR) loads BUILD_DIR/src/capi/libradial_c.so (or BUILD_DIR/libradial_c.so)."""
import ctypes
import os
import statistics
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))


def _library(build_dir):
    for path in (os.path.join(build_dir, "src", "capi", "libradial_c.so"),
                 os.path.join(build_dir, "libradial_c.so")):
        if os.path.exists(path):
            return path
    raise FileNotFoundError(f"no libradial_c.so under {build_dir} (build the radial_c target)")


class Shim:
    def __init__(self, build_dir):
        os.environ["RADIAL_C_LIBRARY"] = _library(build_dir)
        from radial_attention import _lib  # noqa: E402  (reads RADIAL_C_LIBRARY on first use)
        self._lib = _lib
        self.lib = _lib.lib()

    def geometry(self, model, video_frames, height, width):
        g = self._lib.Geometry()
        self._lib.check(self.lib.radial_geometry_from_video(self._lib.MODELS[model], video_frames,
                                                            height, width, 0, -1, ctypes.byref(g)))
        return g.frames, g.tokens_per_frame

    def plan(self, model, frames, tokens_per_frame, decay, block, text=0, text_valid=-1,
             dense=False):
        g = self._lib.Geometry(frames, tokens_per_frame, text, text_valid)
        spec = self._lib.PlanSpec(self._lib.PATTERNS["dense" if dense else "radial"],
                                  self._lib.MODELS[model], decay, block, 0)
        handle = ctypes.c_void_p()
        self._lib.check(self.lib.radial_plan_create(ctypes.byref(g), ctypes.byref(spec),
                                                    ctypes.byref(handle)))
        return Plan(self, handle.value)

    def _views(self, q, k, v, out):
        dtypes = {torch.bfloat16: self._lib.DTYPE_BF16, torch.float16: self._lib.DTYPE_F16}
        views = []
        for t in (q, k, v, out):
            # [B, S, H, D] views of CUDA tensors (any strides, head dim contiguous).
            assert t.dtype == q.dtype and t.is_cuda and t.shape == q.shape
            b, s, h, d = t.shape
            views.append(self._lib.Tensor(t.data_ptr(), dtypes[t.dtype], self._lib.DEVICE_CUDA,
                                          t.device.index or 0, 0, b, s, h, d, t.stride(0),
                                          t.stride(1), t.stride(2)))
        return views

    def chosen(self, plan, q):
        """The choice radial_attention makes for q under the plan, as text."""
        text = ctypes.create_string_buffer(256)
        self._lib.check(self.lib.radial_kernel_choice(plan.handle, ctypes.byref(
            self._views(q, q, q, q)[0]), text, len(text)))
        return text.value.decode()

    def call(self, plan, q, k, v, out, lse=None, scale=0.0, choice=""):
        """A function of no arguments that runs one attention call (the C arguments built
        once, so that timing loops time the library, not the argument packing); it raises
        RadialError when the call fails."""
        views = self._views(q, k, v, out)
        args = (plan.handle, *map(ctypes.byref, views),
                ctypes.c_void_p(lse.data_ptr()) if lse is not None else None, scale, 0,
                ctypes.c_void_p(torch.cuda.current_stream().cuda_stream),
                (choice or "").encode())
        function, check = self.lib.radial_attention_with_choice, self._lib.check

        def run():
            check(function(*args))
        run.keep = views  # the structs must outlive the pointers to them
        return run

    def attention(self, plan, q, k, v, out, lse=None, scale=0.0, choice=""):
        """out = attention under the plan; choice "" (or None): what radial_attention runs."""
        self.call(plan, q, k, v, out, lse, scale, choice)()

    def time(self, plan, q, k, v, out, lse=None, scale=0.0, choice="", warmup=2, reps=5):
        """Times `reps` calls (after `warmup`), each on its own with CUDA events; returns the
        median in ms and every time."""
        return time_calls(self.call(plan, q, k, v, out, lse, scale, choice), warmup, reps)


def time_calls(run, warmup, reps):
    """(median ms, every time) of `reps` runs of run() after `warmup`, each between two CUDA
    events on the current stream."""
    for _ in range(warmup):
        run()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start = torch.cuda.Event(enable_timing=True)
        stop = torch.cuda.Event(enable_timing=True)
        start.record()
        run()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    return statistics.median(times), times


class Plan:
    def __init__(self, shim, handle):
        self.shim, self.handle = shim, handle
        info = shim._lib.PlanInfo()
        shim._lib.check(shim.lib.radial_plan_get_info(handle, ctypes.byref(info)))
        self.seq_len, self.key_limit = info.seq_len, info.key_limit
        self.block_rows, self.kept_blocks, self.block = (info.block_rows, info.kept_blocks,
                                                         info.block_size)

    def __del__(self):
        self.shim.lib.radial_plan_destroy(self.handle)

    def csr(self):
        """(row_offset, col_index) as int64 CPU tensors."""
        import numpy as np
        ro, ci = ctypes.POINTER(ctypes.c_int32)(), ctypes.POINTER(ctypes.c_int32)()
        self.shim._lib.check(self.shim.lib.radial_plan_csr(self.handle, ctypes.byref(ro),
                                                           ctypes.byref(ci)))
        ro = np.ctypeslib.as_array(ro, shape=(self.block_rows + 1,))
        ci = np.ctypeslib.as_array(ci, shape=(self.kept_blocks,))
        return torch.from_numpy(ro.astype(np.int64)), torch.from_numpy(ci.astype(np.int64))

    def block_mask(self, device="cuda"):
        """Dense [rows, cols] bool block mask."""
        ro, ci = self.csr()
        counts = ro[1:] - ro[:-1]
        rows = torch.repeat_interleave(torch.arange(self.block_rows), counts)
        mask = torch.zeros(self.block_rows, self.block_rows, dtype=torch.bool)
        mask[rows, ci] = True
        return mask.to(device)

    def token_mask(self, device="cuda"):
        """[S, S] bool mask: the block mask expanded to tokens, keys >= key_limit hidden."""
        b, s = self.block, self.seq_len
        m = self.block_mask(device).repeat_interleave(b, 0).repeat_interleave(b, 1)[:s, :s]
        m[:, self.key_limit:] = False
        return m
