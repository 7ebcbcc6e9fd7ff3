// Latent video geometry and the model presets that derive it from pixel sizes.
#pragma once

#include <cstdint>
#include <string>

namespace radial {

// The supported video models (radial/model_preset.hpp: their VAE and patch sizes and mask
// rules). New models are appended: the order is the C ABI's RADIAL_MODEL_* numbering.
enum class Model {
  wan, hunyuan, mochi, ltx_video, wan22_ti2v_5b, wan_vace, hunyuan_i2v, skyreels_v2
};

// A preset's name ("wan", "hunyuan", "mochi", "ltx-video", ...); throws Error otherwise.
Model parse_model(const std::string& name);
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

// Latent geometry from what users type: video frames and pixel height and width, through the
// model's preset: frames = t * k + 1 -> k + 1 latent frames (t the VAE's temporal compression:
// 4 for Wan and HunyuanVideo, 6 for Mochi-1, 8 for LTX-Video), tokens per frame
// (h / p) * (w / p) (p = VAE spatial compression x patch: 16, or 32 for LTX-Video and
// Wan2.2-TI2V-5B). Sizes that do not divide get an Error naming the nearest valid sizes.
Geometry geometry_from_video(Model model, int64_t video_frames, int64_t height, int64_t width,
                             int64_t text_tokens = 0, int64_t text_valid = -1);

}  // namespace radial
