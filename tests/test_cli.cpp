// The `radial` command-line tool, run as a separate process: help, one-line errors with exit
// code 2, and outputs (JSON, text dump, PNG) checked against radial::make_plan directly.
#include <gtest/gtest.h>
#include <png.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "radial/geometry.hpp"
#include "radial/plan.hpp"

namespace {

namespace fs = std::filesystem;

struct CliRun {
  int code = -1;
  std::string out, err;
};

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A fresh scratch directory per test, so parallel ctest runs do not share files.
fs::path scratch_dir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  fs::path dir = fs::temp_directory_path() /
                 ("radial_cli_" + std::to_string(::getpid()) + "_" + info->test_suite_name() +
                  "_" + info->name());
  fs::create_directories(dir);
  return dir;
}

CliRun run_cli(const std::string& args) {
  const fs::path dir = scratch_dir();
  const fs::path out = dir / "stdout.txt", err = dir / "stderr.txt";
  const std::string command = std::string("'") + RADIAL_CLI + "' " + args + " >'" +
                              out.string() + "' 2>'" + err.string() + "' </dev/null";
  const int status = std::system(command.c_str());
  CliRun run;
  run.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  run.out = read_file(out);
  run.err = read_file(err);
  return run;
}

int count_lines(const std::string& text) {
  int n = 0;
  for (char c : text) n += c == '\n';
  return n;
}

// A mistake is reported as exactly one line on stderr, nothing on stdout, and exit code 2.
void expect_usage_error(const CliRun& run, const std::vector<std::string>& mentions) {
  EXPECT_EQ(run.code, 2) << run.err;
  EXPECT_EQ(count_lines(run.err), 1) << run.err;
  EXPECT_TRUE(run.out.empty()) << run.out;
  for (const auto& m : mentions) EXPECT_NE(run.err.find(m), std::string::npos) << run.err;
}

// ---- the dump format, parsed strictly (golden/README.md) ----

struct Mask {
  int rows = 0, cols = 0;
  std::set<std::pair<int, int>> kept;
  std::string data;  // the non-comment lines, verbatim
};

Mask parse_dump(const std::string& text) {
  Mask m;
  std::istringstream in(text);
  std::string line;
  bool header = false;
  int row = 0;
  while (std::getline(in, line)) {
    if (!line.empty() && line[0] == '#') continue;
    m.data += line + "\n";
    if (!header) {
      std::istringstream f(line);
      f >> m.rows >> m.cols;
      EXPECT_EQ(line, std::to_string(m.rows) + " " + std::to_string(m.cols));
      header = true;
      continue;
    }
    int last_end = -1;
    std::istringstream f(line);
    std::string interval;
    while (std::getline(f, interval, ' ')) {
      const auto colon = interval.find(':');
      EXPECT_NE(colon, std::string::npos) << "row " << row << ": " << line;
      if (colon == std::string::npos) break;
      const int a = std::stoi(interval.substr(0, colon)), b = std::stoi(interval.substr(colon + 1));
      // Intervals are maximal runs: increasing, non-empty, never touching.
      EXPECT_GT(a, last_end) << "row " << row << ": " << line;
      EXPECT_LT(a, b) << "row " << row << ": " << line;
      EXPECT_LE(b, m.cols);
      for (int c = a; c < b; ++c) m.kept.insert({row, c});
      last_end = b;
    }
    ++row;
  }
  EXPECT_TRUE(header);
  EXPECT_EQ(row, m.rows);
  return m;
}

void expect_mask_equals_plan(const Mask& m, const radial::Plan& plan) {
  ASSERT_EQ(m.rows, plan.block_rows);
  ASSERT_EQ(m.cols, plan.block_cols);
  EXPECT_EQ(static_cast<int64_t>(m.kept.size()), plan.kept_blocks());
  int64_t mismatches = 0;
  for (int r = 0; r < m.rows; ++r)
    for (int c = 0; c < m.cols; ++c)
      mismatches += plan.has(r, c) != (m.kept.count({r, c}) == 1);
  EXPECT_EQ(mismatches, 0);
}

radial::Plan plan_of(radial::Model model, int64_t frames, int64_t tokens, double decay,
                     int block, bool adjacent = false, int64_t text = 0, int64_t valid = -1) {
  radial::Geometry g;
  g.frames = frames, g.tokens_per_frame = tokens, g.text_tokens = text, g.text_valid = valid;
  radial::PlanSpec spec;
  spec.model = model, spec.decay_factor = decay, spec.block_size = block;
  spec.decay_adjacent = adjacent;
  return radial::make_plan(g, spec);
}

// ---- PNG read back with libpng ----

struct Image {
  int64_t width = 0, height = 0;
  std::vector<uint8_t> rgb;
  const uint8_t* at(int64_t x, int64_t y) const { return &rgb[static_cast<size_t>((y * width + x) * 3)]; }
  bool dark(int64_t x, int64_t y) const {
    const uint8_t* p = at(x, y);
    return 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2] < 128;
  }
};

Image read_png(const fs::path& path) {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  Image out;
  if (!png_image_begin_read_from_file(&image, path.c_str())) {
    ADD_FAILURE() << "not a readable PNG: " << path << ": " << image.message;
    return out;
  }
  image.format = PNG_FORMAT_RGB;
  out.width = image.width, out.height = image.height;
  out.rgb.resize(PNG_IMAGE_SIZE(image));
  if (!png_image_finish_read(&image, nullptr, out.rgb.data(), 0, nullptr)) {
    ADD_FAILURE() << "bad PNG data: " << image.message;
    out = {};
  }
  return out;
}

// Each test's scratch directory goes when the test ends.
class Cli : public ::testing::Test {
 protected:
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(scratch_dir(), ignored);
  }
};

// ---- help and errors ----

TEST_F(Cli, HelpWorksForEveryCommand) {
  for (const std::string command : {"", "plan ", "bench "}) {
    const CliRun run = run_cli(command + "--help");
    EXPECT_EQ(run.code, 0) << command;
    EXPECT_NE(run.out.find("Usage: radial"), std::string::npos) << run.out;
    EXPECT_TRUE(run.err.empty()) << run.err;
  }
  EXPECT_NE(run_cli("plan --help").out.find("--dump-mask"), std::string::npos);
  EXPECT_NE(run_cli("bench --help").out.find("--iters"), std::string::npos);
}

TEST_F(Cli, UnknownFlagOrCommandIsOneLineAndExit2) {
  expect_usage_error(run_cli("plan --frames 3 --tokens-per-frame 200 --no-such-flag"),
                     {"--no-such-flag"});
  expect_usage_error(run_cli("bench --frames 3 --tokens-per-frame 200 --bogus 1"), {"--bogus"});
  expect_usage_error(run_cli("--bogus"), {"--bogus", "plan or bench"});
  expect_usage_error(run_cli("frobnicate"), {"frobnicate"});
  expect_usage_error(run_cli(""), {"plan or bench"});
}

TEST_F(Cli, BadValuesNameTheArgument) {
  const std::string geo = "plan --frames 3 --tokens-per-frame 200 ";
  expect_usage_error(run_cli(geo + "--block-size 96"), {"--block-size", "64", "128", "96"});
  expect_usage_error(run_cli(geo + "--decay-factor -1"), {"--decay-factor", "> 0", "-1"});
  expect_usage_error(run_cli(geo + "--decay-factor 0"), {"--decay-factor", "0"});
  expect_usage_error(run_cli(geo + "--decay-factor nan"), {"--decay-factor", "nan"});
  expect_usage_error(run_cli(geo + "--decay-factor 0.5x"), {"--decay-factor", "0.5x"});
  expect_usage_error(run_cli(geo + "--model flux"),
                     {"--model", "wan", "hunyuan", "mochi", "ltx-video", "skyreels-v2", "flux"});
  // Pixel sizes a model's VAE and patch cannot take, named with the nearest valid ones.
  expect_usage_error(run_cli("plan --model mochi --video-frames 161 --height 480 --width 848"),
                     {"video_frames", "6k + 1", "mochi", "157", "163", "161"});
  expect_usage_error(run_cli("plan --model ltx-video --video-frames 161 --height 500 --width 704"),
                     {"height", "multiple of 32", "480", "512", "500"});
  expect_usage_error(
      run_cli("plan --model wan2.2-ti2v-5b --video-frames 121 --height 720 --width 1280"),
      {"height", "multiple of 32", "704", "736", "720"});
  expect_usage_error(run_cli("plan --frames 0 --tokens-per-frame 200"), {"--frames", ">= 1", "0"});
  expect_usage_error(run_cli("plan --frames 3 --tokens-per-frame abc"),
                     {"--tokens-per-frame", "abc"});
  expect_usage_error(run_cli(geo + "--text-tokens 10 --text-valid 20"), {"text_valid", "20"});
  expect_usage_error(run_cli("bench --frames 2 --tokens-per-frame 64 --dtype fp8"),
                     {"--dtype", "bf16", "fp8"});
  expect_usage_error(run_cli("bench --frames 2 --tokens-per-frame 64 --head-dim 512"),
                     {"--head-dim", "512"});
  expect_usage_error(run_cli("bench --frames 2 --tokens-per-frame 64 --iters 0"),
                     {"--iters", "0"});
  expect_usage_error(run_cli("bench --frames 2 --tokens-per-frame 64 --precision int8"),
                     {"--precision", "native", "fp8", "int8"});
  // fp8 runs on CUDA only (compute capability 9.0).
  expect_usage_error(run_cli("bench --frames 2 --tokens-per-frame 64 --backend cpu "
                             "--precision fp8"),
                     {"--precision", "native on the CPU backend", "fp8"});
}

TEST_F(Cli, GeometryFormsAreExclusiveAndComplete) {
  expect_usage_error(run_cli("plan --frames 3 --tokens-per-frame 200 --video-frames 69"),
                     {"geometry", "both"});
  expect_usage_error(run_cli("plan"), {"geometry", "--frames"});
  expect_usage_error(run_cli("plan --frames 3"), {"--tokens-per-frame", "missing"});
  expect_usage_error(run_cli("plan --video-frames 69 --height 768"), {"--width", "missing"});
  // Values the library rejects come back the same way, with its nearest valid sizes.
  expect_usage_error(run_cli("plan --video-frames 70 --height 768 --width 1280"),
                     {"video_frames", "69", "73", "70"});
  expect_usage_error(run_cli("plan --video-frames 69 --height 760 --width 1280"),
                     {"height", "752", "768", "760"});
  expect_usage_error(run_cli("plan --frames 100000 --tokens-per-frame 100000"),
                     {"frames * tokens_per_frame"});
}

// ---- plan outputs against make_plan ----

TEST_F(Cli, JsonMatchesMakePlan) {
  struct Case {
    std::string args;
    radial::Plan plan;
  };
  const std::vector<Case> cases = {
      {"--model wan --frames 18 --tokens-per-frame 3840 --decay-factor 0.2",
       plan_of(radial::Model::wan, 18, 3840, 0.2, 128)},
      {"--model hunyuan --frames 13 --tokens-per-frame 1560 --decay-factor 0.95",
       plan_of(radial::Model::hunyuan, 13, 1560, 0.95, 128)},
      // No --decay-factor: the preset's (0.2 for wan, 0.95 for mochi, 1.0 for ltx-video).
      {"--model wan --frames 9 --tokens-per-frame 384 --block-size 64",
       plan_of(radial::Model::wan, 9, 384, 0.2, 64)},
      {"--model mochi --video-frames 163 --height 480 --width 848 --text-tokens 256",
       plan_of(radial::Model::mochi, 28, 30 * 53, 0.95, 128, false, 256)},
      {"--model ltx-video --video-frames 161 --height 512 --width 704",
       plan_of(radial::Model::ltx_video, 21, 16 * 22, 1.0, 128)},
      {"--model wan --frames 21 --tokens-per-frame 1560 --decay-factor 0.2 --decay-adjacent",
       plan_of(radial::Model::wan, 21, 1560, 0.2, 128, true)},
      {"--model hunyuan --frames 7 --tokens-per-frame 300 --decay-factor 0.5 --text-tokens 256 "
       "--text-valid 200",
       plan_of(radial::Model::hunyuan, 7, 300, 0.5, 128, false, 256, 200)},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.args);
    const CliRun run = run_cli("plan " + c.args + " --json");
    ASSERT_EQ(run.code, 0) << run.err;
    const auto j = nlohmann::json::parse(run.out);
    const auto s = c.plan.stats();
    EXPECT_EQ(j.at("tokens").get<int64_t>(), c.plan.seq_len);
    EXPECT_EQ(j.at("key_limit").get<int64_t>(), c.plan.key_limit);
    EXPECT_EQ(j.at("block_rows").get<int64_t>(), c.plan.block_rows);
    EXPECT_EQ(j.at("block_cols").get<int64_t>(), c.plan.block_cols);
    EXPECT_EQ(j.at("kept_blocks").get<int64_t>(), s.kept_blocks);
    EXPECT_EQ(j.at("total_blocks").get<int64_t>(), s.total_blocks);
    EXPECT_DOUBLE_EQ(j.at("density").get<double>(), s.density);
    EXPECT_DOUBLE_EQ(j.at("flops_per_head_dim").get<double>(), s.flops_per_head_dim);
    EXPECT_DOUBLE_EQ(j.at("dense_flops_per_head_dim").get<double>(), s.dense_flops_per_head_dim);
    EXPECT_EQ(j.at("rows_given_diagonal").get<int64_t>(), c.plan.rows_given_diagonal);
    EXPECT_GE(j.at("plan_ms").get<double>(), 0.0);
  }
}

TEST_F(Cli, DenseFlagPlansEveryBlock) {
  const CliRun run = run_cli("plan --frames 5 --tokens-per-frame 300 --dense --json");
  ASSERT_EQ(run.code, 0) << run.err;
  const auto j = nlohmann::json::parse(run.out);
  EXPECT_EQ(j.at("kept_blocks").get<int64_t>(), 12 * 12);  // ceil(1500 / 128) = 12
  EXPECT_EQ(j.at("density").get<double>(), 1.0);
}

TEST_F(Cli, TextSummaryShowsThePlan) {
  const CliRun run = run_cli("plan --model wan --frames 18 --tokens-per-frame 3840 --decay-factor 0.2");
  ASSERT_EQ(run.code, 0) << run.err;
  const auto s = plan_of(radial::Model::wan, 18, 3840, 0.2, 128).stats();
  EXPECT_NE(run.out.find("69120"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("540 x 540"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("kept blocks     " + std::to_string(s.kept_blocks)), std::string::npos)
      << run.out;
  char density[32];
  std::snprintf(density, sizeof density, "density         %.4f", s.density);
  EXPECT_NE(run.out.find(density), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("planning time"), std::string::npos) << run.out;
}

TEST_F(Cli, DumpMaskRoundTrip) {
  const fs::path dir = scratch_dir();
  const std::vector<std::pair<std::string, radial::Plan>> cases = {
      {"--model wan --frames 12 --tokens-per-frame 1000 --decay-factor 0.2 --block-size 128",
       plan_of(radial::Model::wan, 12, 1000, 0.2, 128)},
      {"--model hunyuan --frames 8 --tokens-per-frame 256 --decay-factor 1.0 --block-size 64",
       plan_of(radial::Model::hunyuan, 8, 256, 1.0, 64)},
      // Tiny frames: rows the rules leave empty get their diagonal.
      {"--model hunyuan --frames 40 --tokens-per-frame 4 --decay-factor 0.3 --block-size 64",
       plan_of(radial::Model::hunyuan, 40, 4, 0.3, 64)},
      {"--model wan --frames 16 --tokens-per-frame 900 --decay-factor 0.4 --decay-adjacent",
       plan_of(radial::Model::wan, 16, 900, 0.4, 128, true)},
      {"--model hunyuan --frames 7 --tokens-per-frame 300 --text-tokens 256 --text-valid 100",
       plan_of(radial::Model::hunyuan, 7, 300, 1.0, 128, false, 256, 100)},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].first);
    const fs::path file = dir / ("mask" + std::to_string(i) + ".txt");
    const CliRun run = run_cli("plan " + cases[i].first + " --dump-mask '" + file.string() + "'");
    ASSERT_EQ(run.code, 0) << run.err;
    const std::string text = read_file(file);
    ASSERT_FALSE(text.empty());
    EXPECT_EQ(text.back(), '\n');
    expect_mask_equals_plan(parse_dump(text), cases[i].second);
  }
}

// The spelling the reference masks are checked with; the data lines match byte for byte.
TEST_F(Cli, DumpMaskReproducesGoldenFiles) {
  const fs::path dir = scratch_dir();
  int checked = 0;
  for (const auto& entry : fs::directory_iterator(RADIAL_GOLDEN_DIR)) {
    if (entry.path().extension() != ".mask") continue;
    // {model}_f{F}_t{T}_d{decay}_b{block}.mask
    std::string name = entry.path().stem().string();
    std::vector<std::string> parts;
    std::istringstream in(name);
    for (std::string p; std::getline(in, p, '_');) parts.push_back(p);
    ASSERT_EQ(parts.size(), 5u) << name;
    const fs::path out = dir / (name + ".mask");
    const CliRun run = run_cli("plan --model " + parts[0] + " --frames " + parts[1].substr(1) +
                            " --tokens-per-frame " + parts[2].substr(1) + " --decay-factor " +
                            parts[3].substr(1) + " --block-size " + parts[4].substr(1) +
                            " --dump-mask '" + out.string() + "'");
    ASSERT_EQ(run.code, 0) << name << ": " << run.err;
    EXPECT_EQ(parse_dump(read_file(out)).data, parse_dump(read_file(entry.path())).data) << name;
    ++checked;
  }
  EXPECT_GE(checked, 15);
}

TEST_F(Cli, PixelGeometryGivesTheSamePlanAsLatent) {
  const fs::path dir = scratch_dir();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--model wan --video-frames 69 --height 768 --width 1280 --decay-factor 0.2",
       "--model wan --frames 18 --tokens-per-frame 3840 --decay-factor 0.2"},
      {"--model wan --video-frames 81 --height 480 --width 832",
       "--model wan --frames 21 --tokens-per-frame 1560"},
      {"--model hunyuan --video-frames 129 --height 720 --width 1280 --decay-factor 0.95",
       "--model hunyuan --frames 33 --tokens-per-frame 3600 --decay-factor 0.95"},
  };
  for (const auto& [pixel, latent] : cases) {
    SCOPED_TRACE(pixel);
    const CliRun a = run_cli("plan " + pixel + " --dump-mask '" + (dir / "a.txt").string() + "'");
    const CliRun b = run_cli("plan " + latent + " --dump-mask '" + (dir / "b.txt").string() + "'");
    ASSERT_EQ(a.code, 0) << a.err;
    ASSERT_EQ(b.code, 0) << b.err;
    const std::string da = read_file(dir / "a.txt"), db = read_file(dir / "b.txt");
    EXPECT_EQ(parse_dump(da).data, parse_dump(db).data);
    EXPECT_EQ(da.substr(0, da.find('\n')), db.substr(0, db.find('\n')));  // same parameters
    const auto ja = nlohmann::json::parse(run_cli("plan " + pixel + " --json").out);
    const auto jb = nlohmann::json::parse(run_cli("plan " + latent + " --json").out);
    EXPECT_EQ(ja.at("frames"), jb.at("frames"));
    EXPECT_EQ(ja.at("tokens_per_frame"), jb.at("tokens_per_frame"));
    EXPECT_EQ(ja.at("kept_blocks"), jb.at("kept_blocks"));
  }
}

// ---- the picture ----

TEST_F(Cli, PngSmallGridIsScaledUpAndShowsEveryBlock) {
  const fs::path file = scratch_dir() / "mask.png";
  // 600 tokens -> 5 blocks of 128 -> 16 px per block (the scale is capped at 16).
  const CliRun run = run_cli("plan --frames 3 --tokens-per-frame 200 --png '" + file.string() + "'");
  ASSERT_EQ(run.code, 0) << run.err;
  const Image img = read_png(file);
  EXPECT_EQ(img.width, 80);
  EXPECT_EQ(img.height, 80);
  if (img.width != 80 || img.height != 80) return;
  for (int y = 0; y < 80; ++y)  // dense plan: every pixel of every block is dark
    for (int x = 0; x < 80; ++x) ASSERT_TRUE(img.dark(x, y)) << x << "," << y;
}

TEST_F(Cli, PngPixelsFollowThePlan) {
  const fs::path file = scratch_dir() / "mask.png";
  // 18 x 3840 tokens, block 128: 540 blocks, one pixel each (1024 / 540 = 1).
  const radial::Plan plan = plan_of(radial::Model::wan, 18, 3840, 0.2, 128);
  const CliRun run = run_cli("plan --frames 18 --tokens-per-frame 3840 --decay-factor 0.2 --png '" +
                          file.string() + "'");
  ASSERT_EQ(run.code, 0) << run.err;
  const Image img = read_png(file);
  ASSERT_EQ(img.width, 540);
  ASSERT_EQ(img.height, 540);
  int64_t mismatches = 0, lines = 0;
  for (int y = 0; y < 540; ++y)
    for (int x = 0; x < 540; ++x) {
      mismatches += img.dark(x, y) != plan.has(y, x);
      const uint8_t* p = img.at(x, y);
      lines += p[0] > p[1] + 60;  // red: a frame boundary
    }
  EXPECT_EQ(mismatches, 0);
  // 17 boundaries, each a row and a column of 540 px (crossings counted once).
  EXPECT_EQ(lines, 17 * 2 * 540 - 17 * 17);
}

TEST_F(Cli, PngOfAHugeGridIsDownsampled) {
  const fs::path file = scratch_dir() / "mask.png";
  // 150 x 3600 = 540000 tokens -> 4219 blocks > 4096 -> 2 blocks per pixel -> 2110 px.
  const radial::Plan plan = plan_of(radial::Model::hunyuan, 150, 3600, 0.95, 128);
  ASSERT_EQ(plan.block_rows, 4219);
  const CliRun run = run_cli("plan --model hunyuan --frames 150 --tokens-per-frame 3600 "
                          "--decay-factor 0.95 --png '" + file.string() + "'");
  ASSERT_EQ(run.code, 0) << run.err;
  const Image img = read_png(file);
  ASSERT_EQ(img.width, 2110);
  ASSERT_EQ(img.height, 2110);
  // A pixel is dark when any of its 2 x 2 blocks is kept.
  std::vector<uint8_t> expect(2110 * 2110, 0);
  for (int32_t r = 0; r < plan.block_rows; ++r)
    for (int32_t i = plan.row_offset[r]; i < plan.row_offset[r + 1]; ++i)
      expect[(r / 2) * 2110 + plan.col_index[i] / 2] = 1;
  int64_t mismatches = 0;
  for (int y = 0; y < 2110; ++y)
    for (int x = 0; x < 2110; ++x) mismatches += img.dark(x, y) != (expect[y * 2110 + x] == 1);
  EXPECT_EQ(mismatches, 0);
}

TEST_F(Cli, PngShadesTheTextRegion) {
  const fs::path file = scratch_dir() / "mask.png";
  // 2100 video + 256 text tokens, 100 valid: key blocks wholly past token 2200 are not kept and
  // are drawn light blue; 19 blocks -> 53 px per block capped to 16.
  const radial::Plan plan = plan_of(radial::Model::hunyuan, 7, 300, 1.0, 128, false, 256, 100);
  const CliRun run = run_cli("plan --model hunyuan --frames 7 --tokens-per-frame 300 --text-tokens "
                          "256 --text-valid 100 --png '" + file.string() + "'");
  ASSERT_EQ(run.code, 0) << run.err;
  const Image img = read_png(file);
  ASSERT_EQ(img.width, plan.block_cols * 16);
  const int32_t last = plan.block_cols - 1;
  ASSERT_FALSE(plan.has(0, last));  // all keys of the last block are padding
  const uint8_t* p = img.at(last * 16 + 8, 8);
  EXPECT_FALSE(img.dark(last * 16 + 8, 8));
  EXPECT_LT(p[0], p[2]);  // bluish, not white
  EXPECT_TRUE(img.dark(8, last * 16 + 8));  // text rows attend to video keys densely
}

// ---- bench ----

TEST_F(Cli, BenchReportsDensityAndErrorOnTheCpu) {
  // 8 x 256 tokens with decay 0.2: a sparse plan, so radial differs from dense.
  const radial::Plan plan = plan_of(radial::Model::wan, 8, 256, 0.2, 64);
  ASSERT_LT(plan.stats().density, 1.0);
  const CliRun run = run_cli("bench --frames 8 --tokens-per-frame 256 --decay-factor 0.2 "
                          "--block-size 64 --heads 2 --head-dim 64 --dtype fp32 --iters 1 "
                          "--backend cpu --json");
  ASSERT_EQ(run.code, 0) << run.err;
  EXPECT_TRUE(run.err.empty()) << run.err;  // no progress display unless asked for
  const auto j = nlohmann::json::parse(run.out);
  EXPECT_DOUBLE_EQ(j.at("density").get<double>(), plan.stats().density);
  EXPECT_EQ(j.at("tokens").get<int64_t>(), 2048);
  EXPECT_EQ(j.at("nonfinite_outputs").get<int64_t>(), 0);
  const double err = j.at("rel_l2_error").get<double>();
  EXPECT_TRUE(std::isfinite(err));
  EXPECT_GT(err, 1e-4);  // dropping blocks changes the output on random inputs
  EXPECT_LT(err, 2.0);
  EXPECT_GT(j.at("radial_ms").get<double>(), 0.0);
  EXPECT_GT(j.at("dense_ms").get<double>(), 0.0);
}

TEST_F(Cli, BenchOfADensePlanMatchesDense) {
  // 3 x 200 tokens: the rules keep every block, so radial and dense are the same computation.
  const CliRun run = run_cli("bench --frames 3 --tokens-per-frame 200 --heads 1 --dtype bf16 "
                          "--iters 1 --backend cpu --json --progress");
  ASSERT_EQ(run.code, 0) << run.err;
  const auto j = nlohmann::json::parse(run.out);
  EXPECT_EQ(j.at("density").get<double>(), 1.0);
  EXPECT_LT(j.at("rel_l2_error").get<double>(), 1e-6);
  EXPECT_NE(run.err.find("4/4"), std::string::npos) << run.err;  // progress, when asked for
}

TEST_F(Cli, BenchRejectsAMissingBackend) {
#ifndef RADIAL_WITH_CUDA
  expect_usage_error(run_cli("bench --frames 2 --tokens-per-frame 64 --backend cuda"),
                     {"--backend", "cuda"});
#else
  GTEST_SKIP() << "this build has the CUDA backend";
#endif
}

// ---- sizes at the limits (issue 10): each is one line and exit code 2, never a wrapped value ----

TEST_F(Cli, BenchSizesThatOverflowOrExceedMemoryAreRefused) {
  // 6148914691236517206 * 3 * 128 wraps in 64 bits: a heap overflow under ASan before.
  expect_usage_error(run_cli("bench --frames 1 --tokens-per-frame 3 --batch 6148914691236517206 "
                             "--dtype fp32 --backend cpu --iters 1 --warmup 0"),
                     {"--batch * --heads * tokens * --head-dim", "6148914691236517206 * 1 * 3 * 128",
                      "64 bits"});
  expect_usage_error(run_cli("bench --frames 1 --tokens-per-frame 3 --batch 61489146912 --heads 7 "
                             "--dtype fp32 --backend cpu --iters 1 --warmup 0"),
                     {"this machine's memory", "61489146912 * 7 * 3 * 128", "GiB"});
}

TEST_F(Cli, OutOfMemoryIsAnErrorAboutTheSizeAskedFor) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "ASan reserves more address space than the limit this test sets";
#else
  // 4.2 GiB of buffers under a 1 GB address-space limit: std::bad_alloc, once exit 1.
  const fs::path dir = scratch_dir();
  const std::string command =
      "(ulimit -v 1000000; exec '" + std::string(RADIAL_CLI) +
      "' bench --frames 100 --tokens-per-frame 1000 --heads 8 --dtype fp32 --backend cpu "
      "--iters 1 --warmup 0) >/dev/null 2>'" + (dir / "err.txt").string() + "'";
  const int status = std::system(command.c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 2);
  const std::string err = read_file(dir / "err.txt");
  EXPECT_EQ(count_lines(err), 1) << err;
  EXPECT_NE(err.find("1 * 8 * 100000 * 128 elements"), std::string::npos) << err;
  EXPECT_NE(err.find("out of memory"), std::string::npos) << err;
#endif
}

TEST_F(Cli, TokenCountsThatWrapAreRefused) {
  expect_usage_error(run_cli("plan --frames 1 --tokens-per-frame 1 --text-tokens 9223372036854775807"),
                     {"total tokens", "at most 2147483647"});
  expect_usage_error(run_cli("plan --video-frames 1 --height 4386832 --width 1076486740971536"),
                     {"height * width", "4386832 * 1076486740971536"});
  expect_usage_error(run_cli("plan --video-frames 1 --height 68719476736 --width 68719476736"),
                     {"height * width"});
}

TEST_F(Cli, SizeHintsAreNeverNegative) {
  const CliRun run = run_cli("plan --video-frames 9223372036854775807 --height 16 --width 16");
  expect_usage_error(run, {"video_frames", "nearest is 9223372036854775805"});
  const std::string message = run.err.substr(0, run.err.find("(see --help)"));
  EXPECT_EQ(message.find('-'), std::string::npos) << run.err;  // no negative size
}

TEST_F(Cli, PlansPastTheLimitAreRefusedByName) {
  expect_usage_error(run_cli("plan --frames 1 --tokens-per-frame 2147483646"),
                     {"geometry", "kMaxKeptBlocks", "268435456"});
  expect_usage_error(run_cli("plan --frames 1 --tokens-per-frame 2100000 --dense --block-size 64"),
                     {"geometry", "kMaxKeptBlocks"});
  // Once 83 s (a transpose over block_rows x block_cols); now per kept block.
  const CliRun run = run_cli("plan --frames 100000000 --tokens-per-frame 2 --json");
  ASSERT_EQ(run.code, 0) << run.err;
  EXPECT_EQ(nlohmann::json::parse(run.out).at("kept_blocks").get<int64_t>(), 1562500);
}

TEST_F(Cli, ThreadCountsPastTheMachineAreCapped) {
  // --threads 4096 failed inside libgomp; counts are capped to the hardware threads, with the
  // same result as one thread on the same seed.
  const std::string args = "bench --frames 2 --tokens-per-frame 100 --dtype fp32 --backend cpu "
                           "--iters 1 --warmup 0 --seed 5 --json --threads ";
  const CliRun many = run_cli(args + "4096");
  const CliRun one = run_cli(args + "1");
  ASSERT_EQ(many.code, 0) << many.err;
  ASSERT_EQ(one.code, 0) << one.err;
  const auto a = nlohmann::json::parse(many.out), b = nlohmann::json::parse(one.out);
  EXPECT_EQ(a.at("rel_l2_error"), b.at("rel_l2_error"));
  EXPECT_EQ(a.at("max_abs_error"), b.at("max_abs_error"));
  EXPECT_EQ(a.at("nonfinite_outputs").get<int64_t>(), 0);
  expect_usage_error(run_cli(args + "2147483648"), {"--threads", "0..2147483647"});
}

TEST_F(Cli, DecayFactorFollowsTheLibrarysRule) {
  // A tiny positive factor is valid for the library, so for the CLI too.
  const CliRun tiny = run_cli("plan --frames 3 --tokens-per-frame 300 --decay-factor 1e-308 --json");
  ASSERT_EQ(tiny.code, 0) << tiny.err;
  EXPECT_EQ(nlohmann::json::parse(tiny.out).at("decay_factor").get<double>(), 1e-308);
  expect_usage_error(run_cli("plan --frames 3 --tokens-per-frame 300 --decay-factor 1e-400"),
                     {"--decay-factor", "expected a finite number > 0", "1e-400 (0 as a double)"});
  expect_usage_error(run_cli("plan --frames 3 --tokens-per-frame 300 --decay-factor 1e400"),
                     {"--decay-factor", "expected a finite number > 0", "1e400"});
  expect_usage_error(run_cli("plan --frames 3 --tokens-per-frame 300 --decay-factor x"),
                     {"--decay-factor", "expected a number", "got x"});
}

}  // namespace
