// The block mask as text, in the format of the shared golden files (golden/README.md): `#`
// comment lines, then "ROWS COLS", then per block row the kept columns as half-open
// intervals "a:b" separated by single spaces.
#pragma once

#include <iosfwd>
#include <string>

#include "radial/plan.hpp"

namespace radial_cli {

void write_mask_dump(std::ostream& out, const radial::Plan& plan);
void write_mask_dump_file(const std::string& path, const radial::Plan& plan);

// The shortest text that reads back as `value`, with ".0" on whole numbers ("1.0", "0.95"),
// as the golden files spell decay factors.
std::string format_decimal(double value);

}  // namespace radial_cli
