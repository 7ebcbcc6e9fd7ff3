// The preset table: one row per model. VAE and patch numbers are the diffusers pipelines' own
// (checked against them in tests/python/test_model_presets.py); the mask rules and their
// reasons are in docs/models.md.
#include "radial/model_preset.hpp"

#include <string>

#include "radial/error.hpp"

namespace radial {

const std::vector<ModelPreset>& model_presets() {
  // clang-format off
  static const std::vector<ModelPreset> table = {
    //  model                  name              description
    //  temporal spatial patch sink   decay dense layers, steps
    {Model::wan, "wan", "Wan2.1 T2V/I2V 1.3B/14B, Wan2.2 A14B",
        4, 8, 2, true, 0.2, 1, 12},
    {Model::hunyuan, "hunyuan", "HunyuanVideo T2V",
        4, 8, 2, false, 0.95, 1, 12},
    {Model::mochi, "mochi", "Mochi-1 (genmo/mochi-1-preview)",
        6, 8, 2, false, 0.95, 1, 16},
    {Model::ltx_video, "ltx-video", "LTX-Video (Lightricks/LTX-Video)",
        8, 32, 1, true, 1.0, 1, 12},
    {Model::wan22_ti2v_5b, "wan2.2-ti2v-5b", "Wan2.2 TI2V 5B (its 16x16 VAE)",
        4, 16, 2, true, 0.8, 1, 12},
    {Model::wan_vace, "wan-vace", "Wan2.1 VACE 1.3B/14B",
        4, 8, 2, true, 0.2, 1, 12},
    {Model::hunyuan_i2v, "hunyuan-i2v", "HunyuanVideo I2V",
        4, 8, 2, true, 0.95, 1, 12},
    {Model::skyreels_v2, "skyreels-v2", "SkyReels-V2 T2V/I2V/DF",
        4, 8, 2, true, 0.2, 1, 12},
  };
  // clang-format on
  return table;
}

const ModelPreset& model_preset(Model model) {
  const auto& table = model_presets();
  const auto index = static_cast<int64_t>(model);
  // The table is in enum order; a Model cast from an integer out of range is refused.
  require(index >= 0 && index < static_cast<int64_t>(table.size()), "model",
          "one of " + model_names(), index);
  return table[static_cast<size_t>(index)];
}

std::string model_names() {
  const auto& table = model_presets();
  std::string names;
  for (size_t i = 0; i < table.size(); ++i) {
    if (i > 0) names += i + 1 == table.size() ? " or " : ", ";
    names += std::string("\"") + table[i].name + "\"";
  }
  return names;
}

}  // namespace radial
