// The block mask as a picture: kept blocks dark on white, frame boundaries as thin red lines,
// the text region (joint attention) shaded blue.
#pragma once

#include <cstdint>
#include <string>

#include "radial/plan.hpp"

namespace radial_cli {

// How blocks map to pixels. Small grids are scaled up (`scale` pixels per block, up to 16, so
// the picture is about 1024 px); grids over 4096 blocks are downsampled (`down` blocks per
// pixel, a pixel dark when any block in it is kept) to stay within 4096 px.
struct PngLayout {
  int scale = 1;
  int64_t down = 1;
  int64_t width = 0, height = 0;
};
constexpr int64_t kMaxPngSide = 4096;
PngLayout png_layout(int64_t block_rows, int64_t block_cols);

// Writes the PNG; throws std::runtime_error when the file cannot be written.
PngLayout write_mask_png(const std::string& path, const radial::Plan& plan);

}  // namespace radial_cli
