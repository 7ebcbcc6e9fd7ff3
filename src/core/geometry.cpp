#include "radial/geometry.hpp"

#include <cstdint>
#include <limits>
#include <string>

#include "core/checked_math.hpp"
#include "radial/error.hpp"

namespace radial {

Model parse_model(const std::string& name) {
  if (name == "wan") return Model::wan;
  if (name == "hunyuan") return Model::hunyuan;
  throw Error("model", "\"wan\" or \"hunyuan\"", "\"" + name + "\"");
}

const char* model_name(Model model) { return model == Model::wan ? "wan" : "hunyuan"; }

void Geometry::validate() const {
  require(frames >= 1, "frames", "an integer >= 1", frames);
  require(tokens_per_frame >= 1, "tokens_per_frame", "an integer >= 1", tokens_per_frame);
  require(text_tokens >= 0, "text_tokens", "an integer >= 0", text_tokens);
  require(text_valid >= -1 && text_valid <= text_tokens, "text_valid",
          "-1 (all) or 0.." + std::to_string(text_tokens), text_valid);
  // Kernels index tokens and block lists with 32-bit integers. The sums and products are
  // checked before they are compared: a wrapped product must not pass as a small one.
  constexpr int64_t limit = std::numeric_limits<int32_t>::max();
  const auto video = checked::mul(frames, tokens_per_frame);
  require(video && *video <= limit, "frames * tokens_per_frame",
          "at most " + std::to_string(limit) + " tokens",
          std::to_string(frames) + " * " + std::to_string(tokens_per_frame));
  const auto total = checked::add(*video, text_tokens);
  require(total && *total <= limit, "total tokens", "at most " + std::to_string(limit),
          std::to_string(*video) + " video + " + std::to_string(text_tokens) + " text tokens");
}

namespace {

// "81 or 85" style hint for a value that must be of the form step * k + offset, >= minimum.
// Overflow-free for every int64 value (the C ABI passes them unchecked).
std::string nearest(int64_t value, int64_t step, int64_t offset, int64_t minimum) {
  if (value < minimum)
    return "a multiple-of-" + std::to_string(step) + " size such as " + std::to_string(minimum);
  const int64_t below = value - (value - offset) % step;  // value >= minimum >= offset
  const auto above = checked::add(below, step);
  if (below < minimum) return "a multiple-of-" + std::to_string(step) + " size such as " +
                              std::to_string(*above);
  if (!above) return "a valid size; nearest is " + std::to_string(below);
  return "a valid size; nearest are " + std::to_string(below) + " and " + std::to_string(*above);
}

}  // namespace

Geometry geometry_from_video(Model model, int64_t video_frames, int64_t height, int64_t width,
                             int64_t text_tokens, int64_t text_valid) {
  // Both VAEs compress time by 4 after a first frame kept on its own: frames = 4k + 1.
  require(video_frames >= 1 && (video_frames - 1) % 4 == 0, "video_frames",
          "4k + 1 frames (" + nearest(video_frames, 4, 1, 1) + ")", video_frames);
  // VAE /8 and patch 2 -> /16 in each spatial direction.
  require(height >= 16 && height % 16 == 0, "height",
          "a multiple of 16 (" + nearest(height, 16, 0, 16) + ")", height);
  require(width >= 16 && width % 16 == 0, "width",
          "a multiple of 16 (" + nearest(width, 16, 0, 16) + ")", width);
  Geometry g;
  g.frames = model == Model::wan ? 1 + video_frames / 4 : 1 + (video_frames - 1) / 4;
  // Checked here so that a product that wraps is named in the user's terms (pixels).
  constexpr int64_t limit = std::numeric_limits<int32_t>::max();
  const auto tokens = checked::mul(height / 16, width / 16);
  require(tokens && *tokens <= limit, "height * width",
          "at most " + std::to_string(limit) + " tokens per frame ((height / 16) * (width / 16))",
          std::to_string(height) + " * " + std::to_string(width));
  g.tokens_per_frame = *tokens;
  g.text_tokens = text_tokens;
  g.text_valid = text_valid;
  g.validate();
  return g;
}

}  // namespace radial
