// Plans for the CPU attention tests (forward and backward): block patterns built by hand, for
// patterns the radial rules never make, and the shape tables' cases (radial, dense or random).
#pragma once

#include <cstdint>
#include <functional>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "radial/plan.hpp"
#include "tensor_buffer.hpp"

namespace radial {
namespace {

// A plan keeping block (r, c) where keep(r, c) says so, with both its CSR (the forward's) and
// CSC (the backward's) indexes. Rows that keep no block are allowed (the kernels must leave
// them zero); the caller keeps the diagonal or block 0 where every row needs a softmax.
Plan pattern_plan(int64_t tokens, int64_t text, int64_t text_valid, int block,
                  const std::function<bool(int32_t, int32_t)>& keep) {
  Geometry g;
  g.frames = 1, g.tokens_per_frame = tokens, g.text_tokens = text, g.text_valid = text_valid;
  Plan plan;
  plan.geometry = g;
  plan.spec.block_size = block;
  plan.seq_len = g.total_tokens();
  plan.key_limit = g.key_limit();
  plan.block_rows = plan.block_cols = static_cast<int32_t>((plan.seq_len + block - 1) / block);
  const int32_t key_blocks = static_cast<int32_t>((plan.key_limit + block - 1) / block);
  plan.row_offset.assign(1, 0);
  for (int32_t r = 0; r < plan.block_rows; ++r) {
    for (int32_t c = 0; c < key_blocks; ++c)
      if (keep(r, c)) plan.col_index.push_back(c);
    plan.row_offset.push_back(static_cast<int32_t>(plan.col_index.size()));
  }
  plan.col_offset.assign(plan.block_cols + 1, 0);
  for (int32_t c = 0; c < plan.block_cols; ++c) {
    for (int32_t r = 0; r < plan.block_rows; ++r)
      if (plan.has(r, c)) plan.row_index.push_back(r);
    plan.col_offset[c + 1] = static_cast<int32_t>(plan.row_index.size());
  }
  return plan;
}

// One row of a shape table.
struct Case {
  std::string name;
  DType dtype;
  Layout layout;
  int64_t batch, heads, dim;
  int block;
  // The plan: radial (frames x tokens_per_frame, with text), dense, or a random pattern.
  enum class Kind { radial, dense, random } kind;
  Model model;
  int64_t frames, tokens_per_frame, text_tokens, text_valid;
};

std::ostream& operator<<(std::ostream& os, const Case& c) { return os << c.name; }

// The case's plan; a random one keeps the diagonal (so every row has a softmax) and each
// other block with probability 0.4.
Plan plan_for(const Case& c, std::mt19937& rng) {
  Geometry g;
  g.frames = c.frames, g.tokens_per_frame = c.tokens_per_frame;
  g.text_tokens = c.text_tokens, g.text_valid = c.text_valid;
  switch (c.kind) {
    case Case::Kind::radial: {
      PlanSpec spec;
      spec.model = c.model, spec.block_size = c.block, spec.decay_factor = 0.5;
      return make_plan(g, spec);
    }
    case Case::Kind::dense: return make_dense_plan(g, c.block);
    case Case::Kind::random: break;
  }
  std::bernoulli_distribution coin(0.4);
  return pattern_plan(g.total_tokens(), 0, -1, c.block,
                      [&](int32_t r, int32_t col) { return r == col || coin(rng); });
}

// The shape table the CPU forward and backward both run against the float64 reference: each
// dtype and layout, head dims 8 to 256, blocks of 64 and 128, radial plans (Wan, and
// HunyuanVideo with padded text), dense plans (one shorter than a block, one with text) and
// random patterns over tails that are not whole blocks.
std::vector<Case> shape_cases() {
  using K = Case::Kind;
  const DType f32 = DType::f32, bf16 = DType::bf16, f16 = DType::f16;
  // clang-format off
  return {
      // name, dtype, layout, batch, heads, dim, block, kind, model, F, T, text, text_valid
      {"f32_bshd_radial_b64_d64", f32, Layout::bshd, 2, 2, 64, 64, K::radial, Model::wan, 6, 150, 0, -1},
      {"bf16_bhsd_radial_b128_d128", bf16, Layout::bhsd, 1, 2, 128, 128, K::radial, Model::wan, 6, 180, 0, -1},
      {"f16_slice_radial_b64_d256", f16, Layout::slice, 1, 1, 256, 64, K::radial, Model::wan, 4, 90, 0, -1},
      {"f32_bhsd_hunyuan_text_b128_d32", f32, Layout::bhsd, 1, 3, 32, 128, K::radial, Model::hunyuan, 3, 200, 77, 50},
      {"bf16_slice_hunyuan_text_b64_d64", bf16, Layout::slice, 2, 2, 64, 64, K::radial, Model::hunyuan, 4, 64, 40, 13},
      {"f16_bshd_random_b64_d96", f16, Layout::bshd, 1, 2, 96, 64, K::random, Model::wan, 1, 333, 0, -1},
      {"f32_slice_random_b128_d80", f32, Layout::slice, 2, 1, 80, 128, K::random, Model::wan, 1, 700, 0, -1},
      {"bf16_bshd_dense_b128_d256", bf16, Layout::bshd, 1, 1, 256, 128, K::dense, Model::wan, 1, 300, 0, -1},
      {"f32_bshd_dense_short_b128_d8", f32, Layout::bshd, 3, 2, 8, 128, K::dense, Model::wan, 1, 50, 0, -1},
      {"f16_bhsd_dense_text_b64_d128", f16, Layout::bhsd, 1, 2, 128, 64, K::dense, Model::wan, 2, 100, 30, 7},
      {"bf16_bhsd_random_b64_d32", bf16, Layout::bhsd, 2, 3, 32, 64, K::random, Model::wan, 1, 257, 0, -1},
  };
  // clang-format on
}

}  // namespace
}  // namespace radial
