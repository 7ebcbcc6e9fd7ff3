#!/bin/bash
# Builds bench/gpu/fp8_pass_bench.cu against the working tree's fp8_quantize.cu, or against the
# one of a commit (second argument), into OUT (first argument), for sm_90a. Needs nvcc and the
# CUTLASS-free headers of src/ only.
#   bench/gpu/fp8_pass_bench.sh OUT [COMMIT]
set -euo pipefail
out=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
src=$root/src/cuda/hopper/fp8_quantize.cu
if [[ $# -gt 1 ]]; then
  src=$(mktemp --suffix=.cu)
  git -C "$root" show "$2:src/cuda/hopper/fp8_quantize.cu" > "$src"
fi
nvcc -std=c++17 -O3 -gencode=arch=compute_90a,code=sm_90a -I"$root/src" -I"$root/include" \
  -lineinfo "$root/bench/gpu/fp8_pass_bench.cu" -x cu "$src" -o "$out"
