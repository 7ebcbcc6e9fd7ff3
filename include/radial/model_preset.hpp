// The model presets: what each supported video model's VAE and transformer do to pixel sizes
// and frame counts, and the mask rules it gets by default (docs/models.md says why).
#pragma once

#include <cstdint>
#include <vector>

#include "radial/geometry.hpp"

namespace radial {

struct ModelPreset {
  Model model;
  const char* name;         // what --model, parse_model and Python take, e.g. "ltx-video"
  const char* description;  // the models it covers, for --help and docs
  // Video frames = temporal_compression * k + 1 (a causal VAE keeps the first frame on its
  // own) -> k + 1 latent frames; every model here has a temporal patch of 1.
  int64_t temporal_compression;
  // Pixels per latent in height and width (VAE), then the transformer's spatial patch: the
  // sides must be multiples of spatial_compression * patch_size, and the tokens per frame are
  // (height / that) * (width / that).
  int64_t spatial_compression;
  int64_t patch_size;
  // Every query keeps the whole first latent frame as keys (the reference's Wan rule).
  bool attention_sink;
  // Defaults of the diffusers integration and the CLI.
  double decay_factor;
  int dense_layers;     // the first transformer blocks keep dense attention
  int dense_timesteps;  // the first denoising steps keep dense attention

  int64_t pixels_per_token() const { return spatial_compression * patch_size; }
};

// The preset of a model (every Model has one).
const ModelPreset& model_preset(Model model);
// Every preset, in the order of the Model enum (and of the C ABI's RADIAL_MODEL_* codes).
const std::vector<ModelPreset>& model_presets();
// "\"wan\", \"hunyuan\", ... or \"skyreels-v2\"": the names parse_model takes, for messages.
std::string model_names();

}  // namespace radial
