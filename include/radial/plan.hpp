// The block-sparse layout of one attention: which key blocks each query block attends to.
// The radial rules (docs/radial-mask.md in the shared notes) live in src/plan/ and nowhere
// else; kernels only read a Plan.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "radial/geometry.hpp"

namespace radial {

enum class Pattern { radial, dense };

struct PlanSpec {
  Pattern pattern = Pattern::radial;
  Model model = Model::wan;
  double decay_factor = 1.0;   // > 0 and finite
  int block_size = 128;        // 128 or 64
  bool decay_adjacent = false; // let the band decay for frame distance 1 too (more sparsity)
};

// FLOPs follow the benchmarks' convention: 4 * head_dim per query-key pair (two matrix
// products), counting whole kept blocks; dense counts seq_len^2 pairs.
struct PlanStats {
  int64_t kept_blocks = 0;
  int64_t total_blocks = 0;  // block_rows * block_cols
  double density = 0.0;      // kept_blocks / total_blocks
  double flops_per_head_dim = 0.0;        // 4 * kept_blocks * block^2, per batch and head
  double dense_flops_per_head_dim = 0.0;  // 4 * seq_len^2, per batch and head
  double flops_ratio() const {
    return dense_flops_per_head_dim > 0 ? flops_per_head_dim / dense_flops_per_head_dim : 0.0;
  }
};

struct PlanDeviceCache;  // the plan's copies on GPUs, owned by the CUDA backend
namespace detail {
struct PlanAccess;  // the library's way to a plan's private parts (src/plan/plan_access.hpp)
}

// Made by make_plan or make_dense_plan and read-only from then on: backends cache what they
// derive from it (the GPU upload), so edit a plan's fields only to build a test of the checks.
// Every attention call validates the plan it gets; the GPU backend trusts the block lists of
// a plan the planner made (the CPU backends walk them on every call).
struct Plan {
  Geometry geometry;
  PlanSpec spec;
  int64_t seq_len = 0;    // query and key tokens (video + text)
  int64_t key_limit = 0;  // keys at index >= key_limit are masked token by token
  int32_t block_rows = 0; // ceil(seq_len / block)
  int32_t block_cols = 0; // ceil(seq_len / block); key blocks wholly past key_limit are never kept

  // CSR: the kept key blocks of query block row r are col_index[row_offset[r] .. row_offset[r+1]),
  // increasing.
  std::vector<int32_t> row_offset;
  std::vector<int32_t> col_index;
  // CSC (the transpose, for the backward pass): the query block rows that attend to key block c
  // are row_index[col_offset[c] .. col_offset[c+1]), increasing.
  std::vector<int32_t> col_offset;
  std::vector<int32_t> row_index;

  // Block rows the rules left empty (tiny frames) whose diagonal block the planner kept so that
  // every row has a softmax.
  int64_t rows_given_diagonal = 0;

  int block_size() const { return spec.block_size; }
  int64_t kept_blocks() const { return static_cast<int64_t>(col_index.size()); }
  // The one key block that holds both valid and masked keys (-1 when key_limit divides evenly).
  int32_t partial_key_block() const {
    return key_limit % spec.block_size ? static_cast<int32_t>(key_limit / spec.block_size) : -1;
  }
  bool has(int32_t row, int32_t col) const;  // binary search in the CSR row
  PlanStats stats() const;

 private:
  friend struct detail::PlanAccess;
  // Filled on first use by the CUDA backend (under its lock), so the plan is uploaded once per
  // device and reused across calls and layers; shared by copies of the plan.
  mutable std::shared_ptr<PlanDeviceCache> device_cache_;
  // The col_index buffer the planner wrote (valid by construction), or null for a plan built
  // by hand. A copy has a buffer of its own, which the checks walk (not trusted).
  const int32_t* planned_cols_ = nullptr;
};

// The largest plan that make_plan and make_dense_plan build: 2^28 kept blocks, i.e. 2 GiB of
// block indices (CSR and CSC, 4 bytes each), about 1 GiB more on each GPU that uses it. A dense
// plan reaches it at 16,384 block rows (2.1 M tokens at block 128, 1.05 M at block 64); radial
// plans of the models' sizes stay far below it (HunyuanVideo at 509 frames 720p: 1.4 M). Block
// rows need no limit of their own: every row keeps at least one block. A geometry whose plan would be larger gets
// an Error naming this limit (argument "geometry"), before any large allocation where a lower
// bound shows it and otherwise as soon as the count passes it.
inline constexpr int64_t kMaxKeptBlocks = int64_t{1} << 28;

// Plans one attention in O(kept blocks) time and memory (the CSC transpose included); never a
// token-level mask, and never work over the whole block_rows x block_cols grid.
Plan make_plan(const Geometry& geometry, const PlanSpec& spec);

// All blocks: for dense warm-up steps and layers. Same type, same kernels; `model` is recorded
// in plan.spec (it changes no block).
Plan make_dense_plan(const Geometry& geometry, int block_size = 128, Model model = Model::wan);

}  // namespace radial
