#include "radial/geometry.hpp"

#include <cstdint>
#include <limits>
#include <string>

#include "core/checked_math.hpp"
#include "radial/error.hpp"
#include "radial/model_preset.hpp"

namespace radial {

Model parse_model(const std::string& name) {
  for (const ModelPreset& preset : model_presets())
    if (name == preset.name) return preset.model;
  throw Error("model", model_names(), "\"" + name + "\"");
}

const char* model_name(Model model) { return model_preset(model).name; }

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
  const ModelPreset& preset = model_preset(model);
  // Causal VAEs encode the first frame on its own, then t frames per latent frame.
  const int64_t t = preset.temporal_compression, p = preset.pixels_per_token();
  const std::string step = std::to_string(t), side = std::to_string(p);
  require(video_frames >= 1 && (video_frames - 1) % t == 0, "video_frames",
          step + "k + 1 frames for " + preset.name + " (" + nearest(video_frames, t, 1, 1) + ")",
          video_frames);
  require(height >= p && height % p == 0, "height",
          "a multiple of " + side + " for " + preset.name + " (" + nearest(height, p, 0, p) + ")",
          height);
  require(width >= p && width % p == 0, "width",
          "a multiple of " + side + " for " + preset.name + " (" + nearest(width, p, 0, p) + ")",
          width);
  Geometry g;
  g.frames = 1 + (video_frames - 1) / t;
  // Checked here so that a product that wraps is named in the user's terms (pixels).
  constexpr int64_t limit = std::numeric_limits<int32_t>::max();
  const auto tokens = checked::mul(height / p, width / p);
  require(tokens && *tokens <= limit, "height * width",
          "at most " + std::to_string(limit) + " tokens per frame ((height / " + side +
              ") * (width / " + side + "))",
          std::to_string(height) + " * " + std::to_string(width));
  g.tokens_per_frame = *tokens;
  g.text_tokens = text_tokens;
  g.text_valid = text_valid;
  g.validate();
  return g;
}

}  // namespace radial
