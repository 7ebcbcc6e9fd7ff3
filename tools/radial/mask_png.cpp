#include "mask_png.hpp"

#include <png.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <stdexcept>
#include <vector>

namespace radial_cli {

namespace {

using Rgb = std::array<uint8_t, 3>;
constexpr Rgb kWhite{255, 255, 255}, kKept{25, 25, 35}, kText{205, 222, 245};
// Boundary lines keep a pixel's darkness readable: kept stays dark, empty stays light.
constexpr Rgb kLineOnKept{150, 20, 20}, kLineOnEmpty{250, 140, 140};

// Luminance, so that a pixel recoloured by a line stays dark (or light) when a second line
// crosses it.
bool is_dark(const Rgb& c) { return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2] < 128; }

class Canvas {
 public:
  Canvas(int64_t w, int64_t h) : w_(w), h_(h), px_(static_cast<size_t>(w * h), kWhite) {}
  Rgb& at(int64_t x, int64_t y) { return px_[static_cast<size_t>(y * w_ + x)]; }
  void fill(int64_t x0, int64_t y0, int64_t x1, int64_t y1, const Rgb& c) {
    for (int64_t y = y0; y < std::min(y1, h_); ++y)
      for (int64_t x = x0; x < std::min(x1, w_); ++x) at(x, y) = c;
  }
  // A full-width horizontal and full-height vertical line at pixel position p.
  void cross_lines(int64_t p) {
    auto mark = [](Rgb& c) { c = is_dark(c) ? kLineOnKept : kLineOnEmpty; };
    if (p < h_) for (int64_t x = 0; x < w_; ++x) mark(at(x, p));
    if (p < w_) for (int64_t y = 0; y < h_; ++y) mark(at(p, y));
  }
  const uint8_t* data() const { return px_.front().data(); }

 private:
  int64_t w_, h_;
  std::vector<Rgb> px_;
};

}  // namespace

PngLayout png_layout(int64_t block_rows, int64_t block_cols) {
  PngLayout l;
  const int64_t side = std::max<int64_t>({block_rows, block_cols, 1});
  if (side > kMaxPngSide) {
    l.down = (side + kMaxPngSide - 1) / kMaxPngSide;
  } else {
    l.scale = static_cast<int>(std::clamp<int64_t>(1024 / side, 1, 16));
  }
  l.width = (block_cols * l.scale + l.down - 1) / l.down;
  l.height = (block_rows * l.scale + l.down - 1) / l.down;
  return l;
}

PngLayout write_mask_png(const std::string& path, const radial::Plan& plan) {
  const PngLayout l = png_layout(plan.block_rows, plan.block_cols);
  Canvas canvas(l.width, l.height);
  const int64_t B = plan.block_size();
  // Pixel index of block b's first pixel (scale up) or of the pixel holding it (downsample).
  auto pixel_of_block = [&](int64_t b) { return b * l.scale / l.down; };

  // Text rows and columns (joint attention) start in the block that holds the first text token.
  const auto& g = plan.geometry;
  if (g.text_tokens > 0) {
    const int64_t first = pixel_of_block(g.video_tokens() / B);
    canvas.fill(0, first, l.width, l.height, kText);
    canvas.fill(first, 0, l.width, l.height, kText);
  }
  for (int32_t r = 0; r < plan.block_rows; ++r)
    for (int32_t i = plan.row_offset[r]; i < plan.row_offset[r + 1]; ++i) {
      const int64_t c = plan.col_index[i];
      const int64_t x = pixel_of_block(c), y = pixel_of_block(r);
      canvas.fill(x, y, x + (l.down > 1 ? 1 : l.scale), y + (l.down > 1 ? 1 : l.scale), kKept);
    }
  // Frame boundaries at token i*T, at token precision; skipped when frames are under 4 px
  // apart, where lines would hide the mask.
  const double px_per_token = static_cast<double>(l.scale) / static_cast<double>(B * l.down);
  if (g.tokens_per_frame * px_per_token >= 4.0)
    for (int64_t f = 1; f < g.frames; ++f)
      canvas.cross_lines(static_cast<int64_t>(f * g.tokens_per_frame * px_per_token));
  if (g.text_tokens > 0) canvas.cross_lines(static_cast<int64_t>(g.video_tokens() * px_per_token));

  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  image.width = static_cast<png_uint_32>(l.width);
  image.height = static_cast<png_uint_32>(l.height);
  image.format = PNG_FORMAT_RGB;
  if (!png_image_write_to_file(&image, path.c_str(), 0, canvas.data(), 0, nullptr)) {
    const std::string why = image.message;
    png_image_free(&image);
    throw std::runtime_error("--png: cannot write " + path + ": " + why);
  }
  return l;
}

}  // namespace radial_cli
