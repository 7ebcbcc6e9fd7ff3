#include "radial/geometry.hpp"

#include <cstdint>
#include <limits>
#include <string>

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
  // Kernels index tokens and block lists with 32-bit integers.
  constexpr int64_t limit = std::numeric_limits<int32_t>::max();
  require(frames <= limit && tokens_per_frame <= limit && frames * 1.0 * tokens_per_frame < limit,
          "frames * tokens_per_frame", "at most " + std::to_string(limit) + " tokens",
          std::to_string(frames) + " * " + std::to_string(tokens_per_frame));
  require(video_tokens() + text_tokens <= limit, "total tokens",
          "at most " + std::to_string(limit), video_tokens() + text_tokens);
}

namespace {

// "81 or 85" style hint for a value that must be of the form step * k + offset, >= minimum.
std::string nearest(int64_t value, int64_t step, int64_t offset, int64_t minimum) {
  int64_t below = value - ((value - offset) % step + step) % step;
  int64_t above = below + step;
  if (below < minimum) return "a multiple-of-" + std::to_string(step) + " size such as " +
                              std::to_string(above < minimum ? minimum : above);
  return "a valid size; nearest are " + std::to_string(below) + " and " + std::to_string(above);
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
  g.tokens_per_frame = (height / 16) * (width / 16);
  g.text_tokens = text_tokens;
  g.text_valid = text_valid;
  g.validate();
  return g;
}

}  // namespace radial
