// What the `radial` commands were asked to do, as plain values (parsing lives in flags.cpp, so
// only that file and main.cpp pay for the CLI11 headers).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

#include "radial/geometry.hpp"
#include "radial/plan.hpp"
#include "radial/tensor.hpp"

namespace radial_cli {

// -1 marks a flag that was not given; every given size is validated to be >= 1 (or >= 0).
struct GeometryFlags {
  std::string model = "wan";
  int64_t frames = -1, tokens_per_frame = -1;              // latent form
  int64_t video_frames = -1, height = -1, width = -1;      // pixel form
  int64_t text_tokens = 0, text_valid = -1;
  // Pixel geometry as typed, for the summary line ("from 69 frames 768x1280"); empty for latent.
  std::string describe_source() const;
  // Exactly one of the two forms, complete; throws UsageError otherwise.
  radial::Geometry resolve() const;
};

struct SpecFlags {
  double decay_factor = -1.0;  // not given: the model preset's
  int block_size = 128;
  bool decay_adjacent = false;
  bool dense = false;
  radial::PlanSpec spec(radial::Model model) const;
};

struct PlanOptions {
  GeometryFlags geometry;
  SpecFlags spec;
  bool json = false;
  std::string png_path, dump_path;
};

struct BenchOptions {
  GeometryFlags geometry;
  SpecFlags spec;
  int64_t heads = 1, head_dim = 128, batch = 1;
  std::string dtype = "bf16", backend = "auto";
  std::string precision = "native";  // or "fp8": the FP8 forward (CUDA, compute capability 9.0)
  int iters = 3, warmup = 1, threads = 0;
  int64_t seed = -1;  // -1: fresh from std::random_device
  bool json = false, progress = false;
};

// A usage mistake found after parsing (e.g. both geometry forms given): exit code 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

int run_plan(const PlanOptions& options);
int run_bench(const BenchOptions& options);

}  // namespace radial_cli
