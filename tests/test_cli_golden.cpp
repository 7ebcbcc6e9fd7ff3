// The reference masks are checked through the CLI, with exactly this spelling:
//   radial plan --model M --frames F --tokens-per-frame T --decay-factor D --block-size B
//               --dump-mask FILE
// The data lines (everything but # comments) must equal the golden file byte for byte.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "golden_mask.hpp"

namespace fs = std::filesystem;

namespace {

std::string data_lines(const fs::path& path) {
  std::ifstream in(path);
  std::ostringstream out;
  std::string line;
  while (std::getline(in, line))
    if (line.empty() || line[0] != '#') out << line << '\n';
  return out.str();
}

}  // namespace

TEST(CliGolden, DumpMaskReproducesEveryGoldenFile) {
  const fs::path dir = fs::temp_directory_path() / ("radial_cli_golden_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  int checked = 0;
  for (const auto& entry : fs::directory_iterator(RADIAL_GOLDEN_DIR)) {
    if (entry.path().extension() != ".mask") continue;
    const std::string name = entry.path().filename().string();
    SCOPED_TRACE(name);
    // Decay factors are passed as written in the file name, as a checker would.
    const std::string stem = entry.path().stem().string();
    const auto c = radial::testing::parse_golden_name(name);
    const std::string decay = stem.substr(stem.find("_d") + 2, stem.find("_b") - stem.find("_d") - 2);
    const fs::path out = dir / name;
    const std::string command = std::string(RADIAL_CLI) + " plan --model " + c.model +
                                " --frames " + std::to_string(c.frames) + " --tokens-per-frame " +
                                std::to_string(c.tokens_per_frame) + " --decay-factor " + decay +
                                " --block-size " + std::to_string(c.block_size) +
                                " --dump-mask " + out.string() + " > /dev/null";
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
    EXPECT_EQ(data_lines(out), data_lines(entry.path()));
    ++checked;
  }
  fs::remove_all(dir);
  EXPECT_GE(checked, 10);
}
