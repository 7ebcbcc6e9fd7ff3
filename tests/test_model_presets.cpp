// The model presets: names, pixel -> latent arithmetic of each model's VAE and patch (the
// expected numbers are the diffusers pipelines' own arithmetic, written out), sizes a model
// cannot take refused by name, and the attention-sink rule each preset gives the planner.
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "radial/error.hpp"
#include "radial/model_preset.hpp"
#include "radial/plan.hpp"
#include "error_checks.hpp"

using namespace radial;

namespace {

std::string error_of(const std::function<void()>& f) { return thrown_by(f).message; }

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST(ModelPresets, NamesRoundTripInEnumOrder) {
  const auto& presets = model_presets();
  ASSERT_EQ(presets.size(), 8u);
  const char* names[] = {"wan", "hunyuan", "mochi", "ltx-video", "wan2.2-ti2v-5b",
                         "wan-vace", "hunyuan-i2v", "skyreels-v2"};
  for (size_t i = 0; i < presets.size(); ++i) {
    SCOPED_TRACE(names[i]);
    EXPECT_EQ(static_cast<size_t>(presets[i].model), i);
    EXPECT_EQ(parse_model(names[i]), presets[i].model);
    EXPECT_STREQ(model_name(presets[i].model), names[i]);
    EXPECT_EQ(&model_preset(presets[i].model), &presets[i]);
  }
}

TEST(ModelPresets, PixelsToLatentsAtEachModelsDefaultSize) {
  struct Case {
    Model model;
    int64_t video_frames, height, width, frames, tokens;
  };
  // latent frames (frames - 1) / t + 1, tokens (h / (s * p)) * (w / (s * p)).
  const Case cases[] = {
      {Model::wan, 81, 480, 832, 20 + 1, 30 * 52},             // t 4, s 8, p 2
      {Model::hunyuan, 129, 720, 1280, 32 + 1, 45 * 80},       // t 4, s 8, p 2
      {Model::mochi, 163, 480, 848, 27 + 1, 30 * 53},          // t 6, s 8, p 2
      {Model::ltx_video, 161, 512, 704, 20 + 1, 16 * 22},      // t 8, s 32, p 1
      {Model::wan22_ti2v_5b, 121, 704, 1280, 30 + 1, 22 * 40}, // t 4, s 16, p 2
      {Model::wan_vace, 81, 480, 832, 20 + 1, 30 * 52},
      {Model::hunyuan_i2v, 129, 720, 1280, 32 + 1, 45 * 80},
      {Model::skyreels_v2, 97, 544, 960, 24 + 1, 34 * 60},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(model_name(c.model));
    const Geometry g = geometry_from_video(c.model, c.video_frames, c.height, c.width, 256, 100);
    EXPECT_EQ(g.frames, c.frames);
    EXPECT_EQ(g.tokens_per_frame, c.tokens);
    EXPECT_EQ(g.text_tokens, 256);
    EXPECT_EQ(g.text_valid, 100);
  }
}

TEST(ModelPresets, SizesAModelCannotTakeAreRefusedByName) {
  std::string e = error_of([] { geometry_from_video(Model::mochi, 161, 480, 848); });
  for (const char* part : {"video_frames", "6k + 1", "mochi", "157", "163", "got 161"})
    EXPECT_TRUE(contains(e, part)) << e << " lacks " << part;
  e = error_of([] { geometry_from_video(Model::ltx_video, 161, 500, 704); });
  for (const char* part : {"height", "multiple of 32", "ltx-video", "480", "512", "got 500"})
    EXPECT_TRUE(contains(e, part)) << e << " lacks " << part;
  e = error_of([] { geometry_from_video(Model::wan22_ti2v_5b, 121, 704, 1272); });
  for (const char* part : {"width", "multiple of 32", "1248", "1280", "got 1272"})
    EXPECT_TRUE(contains(e, part)) << e << " lacks " << part;
  e = error_of([] { geometry_from_video(Model::ltx_video, 160, 512, 704); });
  for (const char* part : {"video_frames", "8k + 1", "153", "161"})
    EXPECT_TRUE(contains(e, part)) << e << " lacks " << part;
  // 720 is a multiple of 16 (Wan2.1) but not of 32 (Wan2.2-TI2V-5B's 16x VAE and patch 2).
  EXPECT_NO_THROW(geometry_from_video(Model::wan, 81, 720, 1280));
  EXPECT_TRUE(contains(error_of([] { geometry_from_video(Model::wan22_ti2v_5b, 81, 720, 1280); }),
                       "got 720"));
}

TEST(ModelPresets, ModelsOutOfRangeAreRefused) {
  Geometry g;
  g.frames = 4, g.tokens_per_frame = 256;
  PlanSpec spec;
  spec.model = static_cast<Model>(8);
  const std::string e = error_of([&] { make_plan(g, spec); });
  EXPECT_TRUE(contains(e, "model") && contains(e, "got 8")) << e;
  EXPECT_TRUE(contains(error_of([] { geometry_from_video(static_cast<Model>(-1), 81, 480, 832); }),
                       "got -1"));
}

TEST(ModelPresets, SinkRuleFollowsThePreset) {
  Geometry g;
  g.frames = 12, g.tokens_per_frame = 256;
  auto plan = [&](Model model) {
    PlanSpec spec;
    spec.model = model, spec.decay_factor = 0.5, spec.block_size = 64;
    return make_plan(g, spec);
  };
  const Plan wan = plan(Model::wan), hunyuan = plan(Model::hunyuan);
  ASSERT_NE(wan.kept_blocks(), hunyuan.kept_blocks());
  for (const ModelPreset& p : model_presets()) {
    SCOPED_TRACE(p.name);
    const Plan got = plan(p.model);
    const Plan& same = p.attention_sink ? wan : hunyuan;
    EXPECT_EQ(got.kept_blocks(), same.kept_blocks());
    EXPECT_EQ(got.row_offset, same.row_offset);
    EXPECT_EQ(got.col_index, same.col_index);
  }
}
