#include "flags.hpp"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "mask_dump.hpp"
#include "radial/model_preset.hpp"

namespace radial_cli {

namespace {

bool parse_int(const std::string& text, int64_t& value) {
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  return ec == std::errc() && ptr == end && !text.empty();
}

// The double a flag's text stands for, rounded as strtod (and Python's float()) rounds it:
// values below the normal range become subnormals or 0, values above it infinity. std::stod
// would throw on both (so "1e-308" was refused though the library takes it) and accepts
// "1.0abc"; a value must be a number and nothing else.
bool parse_double(const std::string& text, double& value) {
  if (text.empty()) return false;
  char* end = nullptr;
  value = std::strtod(text.c_str(), &end);
  return end == text.c_str() + text.size();
}

// A non-zero number written, e.g. 1e-400, that parse_double rounded to 0.
bool rounds_to_zero(const std::string& text) {
  return text.find_first_of("123456789") < text.find_first_of("eE");
}

// The library's rule for the decay factor (finite and > 0), worded as the library words it.
CLI::Validator positive_finite() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        double value = 0;
        if (!parse_double(text, value)) return "expected a number, got " + text;
        if (!std::isfinite(value) || value <= 0)
          return "expected a finite number > 0, got " + text +
                 (value == 0 && rounds_to_zero(text) ? " (0 as a double)" : "");
        return {};
      },
      "");
}

}  // namespace

CLI::Validator int_at_least(int64_t lo, int64_t hi) {
  std::string expected = "an integer >= " + std::to_string(lo);
  if (hi != INT64_MAX) expected = "an integer in " + std::to_string(lo) + ".." + std::to_string(hi);
  return CLI::Validator(
      [lo, hi, expected](std::string& text) -> std::string {
        int64_t value = 0;
        if (!parse_int(text, value) || value < lo || value > hi)
          return "expected " + expected + ", got " + text;
        return {};
      },
      "");
}

CLI::Validator one_of(std::vector<std::string> words) {
  std::string list;
  for (const auto& w : words) list += (list.empty() ? "" : ", ") + w;
  return CLI::Validator(
      [words, list](std::string& text) -> std::string {
        for (const auto& w : words)
          if (text == w) return {};
        return "expected one of " + list + ", got " + text;
      },
      "");
}

void add_geometry_flags(CLI::App& app, GeometryFlags& f) {
  const char* latent = "Latent geometry";
  const char* pixel = "Pixel geometry (model presets)";
  // Every preset by name, with the models it covers and what it does to pixels and frames.
  std::vector<std::string> names;
  std::string help = "Model preset (VAE and patch sizes, attention sink, default decay):";
  for (const radial::ModelPreset& p : radial::model_presets()) {
    names.emplace_back(p.name);
    help += std::string("\n  ") + p.name + ": " + p.description + "; frames " +
            std::to_string(p.temporal_compression) + "k+1, sides multiples of " +
            std::to_string(p.pixels_per_token()) + (p.attention_sink ? ", sink" : "") +
            ", decay " + format_decimal(p.decay_factor);
  }
  app.add_option("--model", f.model, help)->check(one_of(names))->capture_default_str();
  app.add_option("--frames", f.frames, "Latent frames F")
      ->check(int_at_least(1))
      ->type_name("F")
      ->group(latent);
  app.add_option("--tokens-per-frame", f.tokens_per_frame, "Tokens per latent frame T (h*w)")
      ->check(int_at_least(1))
      ->type_name("T")
      ->group(latent);
  app.add_option("--video-frames", f.video_frames, "Video frames (4k+1; the model's rule)")
      ->check(int_at_least(1))
      ->type_name("N")
      ->group(pixel);
  app.add_option("--height", f.height, "Pixel height (multiple of 16; the model's rule)")
      ->check(int_at_least(1))
      ->type_name("H")
      ->group(pixel);
  app.add_option("--width", f.width, "Pixel width (multiple of 16; the model's rule)")
      ->check(int_at_least(1))
      ->type_name("W")
      ->group(pixel);
  app.add_option("--text-tokens", f.text_tokens, "Text tokens after the video (joint attention)")
      ->check(int_at_least(0))
      ->capture_default_str();
  app.add_option("--text-valid", f.text_valid,
                 "Valid text tokens; keys past them are masked (-1: all)")
      ->check(int_at_least(-1))
      ->capture_default_str();
}

void add_spec_flags(CLI::App& app, SpecFlags& f, bool with_dense) {
  app.add_option("--decay-factor", f.decay_factor,
                 "Band decay factor d (> 0; default: the model preset's)")
      ->check(positive_finite())
      ->type_name("D");
  app.add_option("--block-size", f.block_size, "Block size: 64 or 128")
      ->check(one_of({"64", "128"}))
      ->type_name("B")
      ->capture_default_str();
  app.add_flag("--decay-adjacent", f.decay_adjacent,
               "Let the band decay for adjacent frames too (more sparsity)");
  if (with_dense) app.add_flag("--dense", f.dense, "Plan all blocks (dense warm-up steps/layers)");
}

}  // namespace radial_cli
