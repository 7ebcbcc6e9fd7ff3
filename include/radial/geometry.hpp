// Latent video geometry and the model presets that derive it from pixel sizes.
#pragma once

#include <cstdint>
#include <string>

namespace radial {

// The two model families differ in their latent sizes and in the attention sink.
enum class Model { wan, hunyuan };

Model parse_model(const std::string& name);  // "wan" or "hunyuan"; throws Error otherwise
const char* model_name(Model model);

// What one self-attention sees: F latent frames of T tokens each (frame-major), followed by
// text tokens of which the first `text_valid` are real and the rest padding.
struct Geometry {
  int64_t frames = 0;            // F >= 1
  int64_t tokens_per_frame = 0;  // T >= 1 (h * w after patchify)
  int64_t text_tokens = 0;       // text tokens appended after the video (joint attention)
  int64_t text_valid = -1;       // valid text tokens; -1 means all of them

  int64_t video_tokens() const { return frames * tokens_per_frame; }
  int64_t total_tokens() const { return video_tokens() + text_tokens; }
  int64_t valid_text() const { return text_valid < 0 ? text_tokens : text_valid; }
  // Keys at index >= key_limit() are padding and never attended to.
  int64_t key_limit() const { return video_tokens() + valid_text(); }

  // Throws Error unless every field is in range and the token count fits 32-bit indices.
  void validate() const;
};

// Latent geometry from what users type: video frames and pixel height and width.
//  wan:     latent frames 1 + frames / 4 (frames = 4k + 1), tokens (h / 16) * (w / 16)
//  hunyuan: latent frames 1 + (frames - 1) / 4 (frames = 4k + 1), tokens (h / 16) * (w / 16)
// Sizes that do not divide get an Error naming the nearest valid sizes.
Geometry geometry_from_video(Model model, int64_t video_frames, int64_t height, int64_t width,
                             int64_t text_tokens = 0, int64_t text_valid = -1);

}  // namespace radial
