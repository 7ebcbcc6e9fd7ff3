#include "mask_dump.hpp"

#include <charconv>
#include <cstdio>
#include <fstream>
#include <ostream>
#include <stdexcept>
#include <string>

#include "radial/error.hpp"

namespace radial_cli {

std::string format_decimal(double value) {
  char buffer[64];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
  std::string text(buffer, ec == std::errc() ? end : buffer);
  if (text.find_first_of(".eEn") == std::string::npos) text += ".0";  // n: nan/inf stay as is
  return text;
}

void write_mask_dump(std::ostream& out, const radial::Plan& plan) {
  const auto& g = plan.geometry;
  const auto stats = plan.stats();
  char density[32];
  std::snprintf(density, sizeof density, "%.6f", stats.density);
  out << "# radial block mask: model=" << radial::model_name(plan.spec.model)
      << " frames=" << g.frames << " tokens_per_frame=" << g.tokens_per_frame
      << " decay_factor=" << format_decimal(plan.spec.decay_factor)
      << " block_size=" << plan.block_size();
  if (plan.spec.pattern == radial::Pattern::dense) out << " pattern=dense";
  if (plan.spec.decay_adjacent) out << " decay_adjacent=1";
  if (g.text_tokens > 0) out << " text_tokens=" << g.text_tokens << " text_valid=" << g.valid_text();
  out << "\n# tokens=" << plan.seq_len << " blocks=" << plan.block_rows
      << "; a partial last block row/column is dense\n"
      << "# density=" << density << "\n"
      << plan.block_rows << ' ' << plan.block_cols << '\n';
  // Runs of consecutive kept columns in the (increasing) CSR row become one interval.
  std::string line;
  for (int32_t r = 0; r < plan.block_rows; ++r) {
    line.clear();
    const int32_t begin = plan.row_offset[r], end = plan.row_offset[r + 1];
    for (int32_t i = begin; i < end;) {
      int32_t j = i + 1;
      while (j < end && plan.col_index[j] == plan.col_index[j - 1] + 1) ++j;
      if (!line.empty()) line += ' ';
      line += std::to_string(plan.col_index[i]) + ':' + std::to_string(plan.col_index[j - 1] + 1);
      i = j;
    }
    line += '\n';
    out << line;
  }
}

void write_mask_dump_file(const std::string& path, const radial::Plan& plan) {
  std::ofstream file(path, std::ios::binary);
  if (!file) throw std::runtime_error("--dump-mask: cannot open " + path + " for writing");
  write_mask_dump(file, plan);
  file.flush();
  if (!file) throw std::runtime_error("--dump-mask: writing " + path + " failed");
}

}  // namespace radial_cli
