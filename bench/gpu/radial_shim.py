"""ctypes access to libradial_bench_shim (bench/gpu/bench_shim.cpp) for torch tensors."""
import ctypes
import os

import torch

_DTYPES = {torch.bfloat16: 1, torch.float16: 2}
MODELS = {"wan": 0, "hunyuan": 1}


def _i64(values):
    return (ctypes.c_int64 * len(values))(*values)


class Shim:
    def __init__(self, build_dir):
        path = os.path.join(build_dir, "tests", "gpu", "libradial_bench_shim.so")
        if not os.path.exists(path):
            path = os.path.join(build_dir, "libradial_bench_shim.so")
        lib = ctypes.CDLL(path)
        lib.rb_last_error.restype = ctypes.c_char_p
        lib.rb_plan.restype = ctypes.c_void_p
        lib.rb_plan.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64,
                                ctypes.c_int64, ctypes.c_double, ctypes.c_int, ctypes.c_int]
        lib.rb_plan_free.argtypes = [ctypes.c_void_p]
        lib.rb_plan_info.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int64)]
        lib.rb_plan_row_offset.restype = ctypes.POINTER(ctypes.c_int32)
        lib.rb_plan_row_offset.argtypes = [ctypes.c_void_p]
        lib.rb_plan_col_index.restype = ctypes.POINTER(ctypes.c_int32)
        lib.rb_plan_col_index.argtypes = [ctypes.c_void_p]
        lib.rb_geometry.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64,
                                    ctypes.POINTER(ctypes.c_int64), ctypes.POINTER(ctypes.c_int64)]
        common = [ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_int64)] + \
            [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int64)] * 4 + \
            [ctypes.c_void_p, ctypes.c_double, ctypes.c_int, ctypes.c_void_p]
        lib.rb_attention.argtypes = common
        lib.rb_time.argtypes = common + [ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_float)]
        lib.rb_time.restype = ctypes.c_float
        self.lib = lib

    def error(self):
        return self.lib.rb_last_error().decode()

    def geometry(self, model, video_frames, height, width):
        f, t = ctypes.c_int64(), ctypes.c_int64()
        if self.lib.rb_geometry(MODELS[model], video_frames, height, width, ctypes.byref(f),
                                ctypes.byref(t)):
            raise RuntimeError(self.error())
        return f.value, t.value

    def plan(self, model, frames, tokens_per_frame, decay, block, text=0, text_valid=-1,
             dense=False):
        handle = self.lib.rb_plan(MODELS[model], frames, tokens_per_frame, text, text_valid,
                                  decay, block, int(dense))
        if not handle:
            raise RuntimeError(self.error())
        return Plan(self, handle)

    def _args(self, plan, q, k, v, out, lse, scale, variant):
        for t in (q, k, v, out):
            assert t.dtype == q.dtype and t.is_cuda and t.shape == q.shape
        # Tensors are [B, S, H, D] views (any strides, head dim contiguous).
        strides = [_i64([t.stride(0), t.stride(1), t.stride(2)]) for t in (q, k, v, out)]
        self._keep = strides
        return [plan.handle, _DTYPES[q.dtype], _i64(list(q.shape)),
                q.data_ptr(), strides[0], k.data_ptr(), strides[1], v.data_ptr(), strides[2],
                out.data_ptr(), strides[3], lse.data_ptr() if lse is not None else None,
                scale, variant, torch.cuda.current_stream().cuda_stream]

    def attention(self, plan, q, k, v, out, lse=None, scale=0.0, variant=-1):
        if self.lib.rb_attention(*self._args(plan, q, k, v, out, lse, scale, variant)):
            raise RuntimeError(self.error())

    def time(self, plan, q, k, v, out, lse=None, scale=0.0, variant=0, warmup=2, reps=5):
        times = (ctypes.c_float * reps)()
        median = self.lib.rb_time(*self._args(plan, q, k, v, out, lse, scale, variant),
                                  warmup, reps, times)
        if median < 0:
            raise RuntimeError(self.error())
        return median, list(times)


class Plan:
    def __init__(self, shim, handle):
        self.shim, self.handle = shim, handle
        info = (ctypes.c_int64 * 5)()
        shim.lib.rb_plan_info(handle, info)
        self.seq_len, self.key_limit, self.block_rows, self.kept_blocks, self.block = list(info)

    def __del__(self):
        self.shim.lib.rb_plan_free(self.handle)

    def csr(self):
        """(row_offset, col_index) as int64 CPU tensors."""
        import numpy as np
        ro = np.ctypeslib.as_array(self.shim.lib.rb_plan_row_offset(self.handle),
                                   shape=(self.block_rows + 1,))
        ci = np.ctypeslib.as_array(self.shim.lib.rb_plan_col_index(self.handle),
                                   shape=(self.kept_blocks,))
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
