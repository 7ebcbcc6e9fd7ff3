// Reads block masks in the format of the shared golden/README.md.
#pragma once

#include <cstdint>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "radial/plan.hpp"

namespace radial::testing {

struct BlockMask {
  int32_t rows = 0, cols = 0;
  std::vector<std::vector<int32_t>> kept;  // kept columns per row, increasing
};

inline BlockMask read_block_mask(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  BlockMask mask;
  std::string line;
  bool have_size = false;
  while (std::getline(in, line)) {
    if (!line.empty() && line[0] == '#') continue;
    std::istringstream fields(line);
    if (!have_size) {
      fields >> mask.rows >> mask.cols;
      have_size = true;
      continue;
    }
    std::vector<int32_t> row;
    std::string interval;
    while (fields >> interval) {
      const auto colon = interval.find(':');
      const int a = std::stoi(interval.substr(0, colon)), b = std::stoi(interval.substr(colon + 1));
      for (int c = a; c < b; ++c) row.push_back(c);
    }
    mask.kept.push_back(std::move(row));
  }
  if (static_cast<int32_t>(mask.kept.size()) != mask.rows)
    throw std::runtime_error(path + ": expected " + std::to_string(mask.rows) + " rows");
  return mask;
}

inline BlockMask block_mask_of(const Plan& plan) {
  BlockMask mask;
  mask.rows = plan.block_rows, mask.cols = plan.block_cols;
  for (int32_t r = 0; r < plan.block_rows; ++r)
    mask.kept.emplace_back(plan.col_index.begin() + plan.row_offset[r],
                           plan.col_index.begin() + plan.row_offset[r + 1]);
  return mask;
}

// Parameters from a golden file name: {model}_f{F}_t{T}_d{decay}_b{block}.mask
struct GoldenCase {
  std::string model;
  int64_t frames = 0, tokens_per_frame = 0;
  double decay_factor = 0;
  int block_size = 0;
};

inline GoldenCase parse_golden_name(const std::string& name) {
  static const std::regex pattern(R"(^(wan|hunyuan)_f(\d+)_t(\d+)_d([0-9.]+)_b(\d+)\.mask$)");
  std::smatch m;
  if (!std::regex_match(name, m, pattern)) throw std::runtime_error("bad golden name " + name);
  return {m[1], std::stoll(m[2]), std::stoll(m[3]), std::stod(m[4]), std::stoi(m[5])};
}

}  // namespace radial::testing
