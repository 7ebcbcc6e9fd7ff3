// Every bad input to the geometry and planning functions gets a radial::Error that names the
// argument, what was expected and what came.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>

#include "radial/error.hpp"
#include "radial/plan.hpp"
#include "error_checks.hpp"

using namespace radial;

namespace {

Geometry geom(int64_t F, int64_t T, int64_t text = 0, int64_t valid = -1) {
  Geometry g;
  g.frames = F, g.tokens_per_frame = T, g.text_tokens = text, g.text_valid = valid;
  return g;
}

PlanSpec spec(double decay = 1.0, int block = 128) {
  PlanSpec s;
  s.decay_factor = decay;
  s.block_size = block;
  return s;
}

}  // namespace

TEST(PlanErrors, BlockSize) {
  expect_error([] { make_plan(geom(4, 256), spec(1.0, 96)); }, {"block_size", "64 or 128", "96"});
  expect_error([] { make_dense_plan(geom(4, 256), 0); }, {"block_size", "got 0"});
}

TEST(PlanErrors, DecayFactor) {
  expect_error([] { make_plan(geom(4, 256), spec(0.0)); }, {"decay_factor", "> 0", "got 0"});
  expect_error([] { make_plan(geom(4, 256), spec(-1.0)); }, {"decay_factor", "got -1"});
  expect_error([] { make_plan(geom(4, 256), spec(std::nan(""))); }, {"decay_factor", "nan"});
  expect_error([] { make_plan(geom(4, 256), spec(std::numeric_limits<double>::infinity())); },
               {"decay_factor", "inf"});
}

TEST(PlanErrors, GeometryFields) {
  expect_error([] { make_plan(geom(0, 256), spec()); }, {"frames", ">= 1", "got 0"});
  expect_error([] { make_plan(geom(-3, 256), spec()); }, {"frames", "got -3"});
  expect_error([] { make_plan(geom(4, 0), spec()); }, {"tokens_per_frame", "got 0"});
  expect_error([] { make_plan(geom(4, 256, -1), spec()); }, {"text_tokens", ">= 0", "got -1"});
  expect_error([] { make_plan(geom(4, 256, 10, 11), spec()); }, {"text_valid", "0..10", "got 11"});
  expect_error([] { make_plan(geom(4, 256, 10, -2), spec()); }, {"text_valid", "got -2"});
}

TEST(PlanErrors, TokenCountsThatOverflow32BitIndices) {
  expect_error([] { make_plan(geom(100000, 100000), spec()); },
               {"frames * tokens_per_frame", "2147483647", "100000 * 100000"});
  expect_error([] { make_plan(geom(1, 2147483000, 1000), spec()); }, {"total tokens"});
}

TEST(GeometryErrors, ModelPresets) {
  expect_error([] { parse_model("sora"); },
               {"model", "\"wan\", \"hunyuan\", \"mochi\"", "or \"skyreels-v2\"", "\"sora\""});
  expect_error([] { geometry_from_video(Model::wan, 82, 720, 1280); },
               {"video_frames", "4k + 1", "81", "85", "got 82"});
  expect_error([] { geometry_from_video(Model::hunyuan, 0, 720, 1280); }, {"video_frames", "got 0"});
  expect_error([] { geometry_from_video(Model::wan, 81, 700, 1280); },
               {"height", "multiple of 16", "688", "704", "got 700"});
  expect_error([] { geometry_from_video(Model::wan, 81, 720, 1270); },
               {"width", "1264", "1280", "got 1270"});
  expect_error([] { geometry_from_video(Model::wan, 81, 8, 1280); }, {"height", "16", "got 8"});
}

TEST(Geometry, ModelPresetsMatchTheModels) {
  const Geometry wan = geometry_from_video(Model::wan, 81, 720, 1280);
  EXPECT_EQ(wan.frames, 21);
  EXPECT_EQ(wan.tokens_per_frame, 45 * 80);
  const Geometry wan69 = geometry_from_video(Model::wan, 69, 768, 1280);
  EXPECT_EQ(wan69.frames, 18);
  EXPECT_EQ(wan69.tokens_per_frame, 3840);
  const Geometry hy = geometry_from_video(Model::hunyuan, 509, 720, 1280, 256, 200);
  EXPECT_EQ(hy.frames, 128);
  EXPECT_EQ(hy.tokens_per_frame, 3600);
  EXPECT_EQ(hy.total_tokens(), 128 * 3600 + 256);
  EXPECT_EQ(hy.key_limit(), 128 * 3600 + 200);
  EXPECT_EQ(geometry_from_video(Model::hunyuan, 117, 768, 1280).frames, 30);
}
