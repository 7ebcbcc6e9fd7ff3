// The command-line flags shared by `radial plan` and `radial bench`, with validators whose
// messages say what was expected and what came (CLI11 prefixes the flag name).
#pragma once

#include <CLI/CLI.hpp>

#include "options.hpp"

namespace radial_cli {

void add_geometry_flags(CLI::App& app, GeometryFlags& flags);
void add_spec_flags(CLI::App& app, SpecFlags& flags, bool with_dense);

// Integer in [lo, hi]: "expected an integer >= 1, got 0".
CLI::Validator int_at_least(int64_t lo, int64_t hi = INT64_MAX);
// One of the listed words: "expected one of wan, hunyuan, got foo".
CLI::Validator one_of(std::vector<std::string> words);

}  // namespace radial_cli
