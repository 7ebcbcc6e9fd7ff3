// `radial`: plan Radial Attention block masks and benchmark them. Parsing is CLI11's; every
// mistake in the command line or in the values (including those the library rejects) ends
// with one line on stderr and exit code 2.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <new>
#include <string>

#include "flags.hpp"
#include "options.hpp"
#include "radial/error.hpp"

namespace {

// Error lines stay one line even when a message has line breaks.
void print_error(const std::string& message) {
  std::string line = message;
  for (char& c : line)
    if (c == '\n' || c == '\r') c = ' ';
  if (line.rfind("radial", 0) != 0) line = "radial: " + line;
  std::fprintf(stderr, "%s (see --help)\n", line.c_str());
}

void add_plan_command(CLI::App& app, radial_cli::PlanOptions& o) {
  auto* cmd = app.add_subcommand("plan", "Plan one attention: tokens, block grid, kept blocks, "
                                         "density, FLOPs against dense");
  radial_cli::add_geometry_flags(*cmd, o.geometry);
  radial_cli::add_spec_flags(*cmd, o.spec, true);
  cmd->add_flag("--json", o.json, "Print the same as one JSON object");
  cmd->add_option("--png", o.png_path, "Draw the block mask to this PNG file")->type_name("FILE");
  cmd->add_option("--dump-mask", o.dump_path,
                  "Write the block mask as text (the golden-file format)")
      ->type_name("FILE");
}

void add_bench_command(CLI::App& app, radial_cli::BenchOptions& o) {
  auto* cmd = app.add_subcommand("bench", "Time radial against dense attention on random inputs "
                                          "and report the error of radial against dense");
  radial_cli::add_geometry_flags(*cmd, o.geometry);
  radial_cli::add_spec_flags(*cmd, o.spec, false);
  cmd->add_option("--heads", o.heads, "Attention heads")
      ->check(radial_cli::int_at_least(1))
      ->capture_default_str();
  cmd->add_option("--head-dim", o.head_dim, "Head dimension")
      ->check(radial_cli::int_at_least(1, 256))
      ->capture_default_str();
  cmd->add_option("--batch", o.batch, "Batch size")
      ->check(radial_cli::int_at_least(1))
      ->capture_default_str();
  cmd->add_option("--dtype", o.dtype, "Element type: bf16, fp16 or fp32")
      ->check(radial_cli::one_of({"bf16", "fp16", "fp32"}))
      ->capture_default_str();
  cmd->add_option("--iters", o.iters, "Timed calls of each plan (the median is reported)")
      ->check(radial_cli::int_at_least(1, 1000000))
      ->capture_default_str();
  cmd->add_option("--warmup", o.warmup, "Untimed calls of each plan first")
      ->check(radial_cli::int_at_least(0, 1000000))
      ->capture_default_str();
  cmd->add_option("--backend", o.backend, "auto (CUDA when a GPU is visible, else CPU), cpu or cuda")
      ->check(radial_cli::one_of({"auto", "cpu", "cuda"}))
      ->capture_default_str();
  cmd->add_option("--precision", o.precision,
                  "native, or fp8: the FP8 forward, its quantisation included in each timing "
                  "(CUDA, compute capability 9.0; head dim 64 or 128, block 128)")
      ->check(radial_cli::one_of({"native", "fp8"}))
      ->capture_default_str();
  cmd->add_option("--threads", o.threads,
                  "CPU threads (0: all; counts above the hardware threads are capped to them)")
      ->check(radial_cli::int_at_least(0, INT32_MAX))
      ->capture_default_str();
  cmd->add_option("--seed", o.seed, "Seed for the inputs (default: fresh each run)")
      ->check(radial_cli::int_at_least(0));
  cmd->add_flag("--json", o.json, "Print the results as one JSON object");
  cmd->add_flag("--progress", o.progress, "Show progress on stderr even when it is not a terminal");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"radial: Radial Attention block-sparse masks (plan, picture, benchmark)", "radial"};
  app.require_subcommand(1);
  radial_cli::PlanOptions plan_options;
  radial_cli::BenchOptions bench_options;
  add_plan_command(app, plan_options);
  add_bench_command(app, bench_options);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    // CLI11 checks for a command before unknown flags; name what came instead.
    if (app.get_subcommands().empty()) {
      print_error(std::string("command: expected plan or bench, got ") +
                  (argc > 1 ? argv[1] : "nothing"));
      return 2;
    }
    print_error(e.what());
    return 2;
  }

  try {
    if (app.got_subcommand("plan")) return radial_cli::run_plan(plan_options);
    return radial_cli::run_bench(bench_options);
  } catch (const radial::Error& e) {  // a value the library rejects
    print_error(e.what());
    return 2;
  } catch (const radial_cli::UsageError& e) {
    print_error(e.what());
    return 2;
  } catch (const std::bad_alloc&) {  // sizes beyond what is free now (checked ones aside)
    print_error("radial: out of memory: the sizes given ask for more memory than is free");
    return 2;
  } catch (const std::exception& e) {  // I/O and device failures
    print_error(e.what());
    return 1;
  }
}
