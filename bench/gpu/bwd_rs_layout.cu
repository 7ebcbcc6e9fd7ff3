// Host-only check (no GPU) behind the Hopper backward's register operands (the library's
// kernel and bwd_rs_dv; bwd_hopper_kernel.cuh, Operands): that accumulator entry i of a thread's S^T
// (and dP^T) tile, from MmaSdP, sits at the same (key, query) as value i of the register A
// operand (Traits::FragAKV, flat column-major) of dV's and dK's products, from MmaKVrs, for every
// thread and entry, at both dtypes and head dims. bench/gpu/sass_bwd.py compiles and runs it;
// prints the mismatches (0 expected) and exits 1 on any.
#include <cstdio>

#include "cuda/hopper/bwd_hopper_kernel.cuh"

namespace hb = radial::cuda_detail::hopper_bwd;
using namespace cute;

template <class T>
int mismatches(const char* name) {
  typename T::MmaSdP mma_sdp;
  typename T::MmaKVrs mma_rs;
  int bad = 0;
  for (int t = 0; t < 128; ++t) {
    // Coordinates (key, query) of each entry: an identity tensor partitioned as the products do.
    Tensor cC = mma_sdp.get_thread_slice(t).partition_C(
        make_identity_tensor(Shape<typename T::KH, typename T::QT>{}));
    Tensor cA = mma_rs.get_thread_slice(t).partition_A(
        make_identity_tensor(Shape<typename T::KH, typename T::QT>{}));
    static_assert(size(decltype(cC){}) == 32 && size(decltype(cA){}) == 32, "entries a thread");
    // The kernel's register operand indexes its values flat, column-major over FragAKV's shape.
    static_assert(decltype(shape(cA)){} == decltype(shape(typename T::FragAKV{})){},
                  "the A partition has FragAKV's shape");
    for (int i = 0; i < 32; ++i) {
      const auto c = cC(i);
      const auto a = cA(i);
      if (get<0>(c) != get<0>(a) || get<1>(c) != get<1>(a)) {
        if (bad < 5) {
          std::printf("%s: thread %d entry %d: S^T at (%d, %d), A operand at (%d, %d)\n", name,
                      t, i, int(get<0>(c)), int(get<1>(c)), int(get<0>(a)), int(get<1>(a)));
        }
        ++bad;
      }
    }
  }
  std::printf("%s: %d of %d entries differ\n", name, bad, 128 * 32);
  return bad;
}

int main() {
  int bad = 0;
  bad += mismatches<hb::BwdTraits<cutlass::bfloat16_t, 128>>("bf16 D128");
  bad += mismatches<hb::BwdTraits<cutlass::half_t, 128>>("f16 D128");
  bad += mismatches<hb::BwdTraits<cutlass::bfloat16_t, 64>>("bf16 D64");
  bad += mismatches<hb::BwdTraits<cutlass::half_t, 64>>("f16 D64");
  return bad == 0 ? 0 : 1;
}
