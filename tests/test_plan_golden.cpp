// The planner reproduces every mask made by the published implementation, bit for bit.
#include <gtest/gtest.h>

#include <filesystem>

#include "golden_mask.hpp"
#include "radial/plan.hpp"

namespace fs = std::filesystem;
using namespace radial;
using namespace radial::testing;

namespace {

std::vector<fs::path> golden_files() {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(RADIAL_GOLDEN_DIR))
    if (entry.path().extension() == ".mask") files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

TEST(PlanGolden, DirectoryHoldsMasks) {
  ASSERT_TRUE(fs::is_directory(RADIAL_GOLDEN_DIR)) << "golden masks not found at " << RADIAL_GOLDEN_DIR;
  EXPECT_GE(golden_files().size(), 10u);
}

TEST(PlanGolden, EveryFileMatchesBitForBit) {
  for (const auto& path : golden_files()) {
    SCOPED_TRACE(path.filename().string());
    const GoldenCase c = parse_golden_name(path.filename().string());
    Geometry g;
    g.frames = c.frames;
    g.tokens_per_frame = c.tokens_per_frame;
    PlanSpec spec;
    spec.model = parse_model(c.model);
    spec.decay_factor = c.decay_factor;
    spec.block_size = c.block_size;
    const Plan plan = make_plan(g, spec);
    const BlockMask want = read_block_mask(path.string());
    const BlockMask got = block_mask_of(plan);
    ASSERT_EQ(got.rows, want.rows);
    ASSERT_EQ(got.cols, want.cols);
    int mismatched_rows = 0;
    for (int32_t r = 0; r < want.rows; ++r) {
      if (got.kept[r] != want.kept[r] && ++mismatched_rows <= 3)
        ADD_FAILURE() << "row " << r << ": " << got.kept[r].size() << " kept, want "
                      << want.kept[r].size();
    }
    EXPECT_EQ(mismatched_rows, 0);
    EXPECT_EQ(plan.rows_given_diagonal, 0);
  }
}
