// A bounded fuzz pass over what users and bindings can reach with arbitrary numbers: the C
// ABI's geometry and plan entry points (in this process) and the `radial` CLI's flags (as child
// processes). Values are random and boundary ones (0, +-1, block sizes, the 32- and 64-bit
// limits). Every call must end within a time bound with success, or with a clear error: a
// status and a "radial: ARGUMENT: expected ..., got ..." message from the C ABI, exit code 2
// and one line on stderr from the CLI. Successes are checked for consistency. A failure prints
// the seed and the call, so that `radial_fuzz --seed S` replays it.
//
//   radial_fuzz --cli PATH [--seed S] [--abi-calls N] [--cli-calls N] [--seconds-per-call T]
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cinttypes>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "radial/c_api.h"
#include "radial/plan.hpp"

namespace {

constexpr int64_t kI64Max = std::numeric_limits<int64_t>::max();
constexpr int64_t kI64Min = std::numeric_limits<int64_t>::min();
constexpr int64_t kI32Max = std::numeric_limits<int32_t>::max();

std::mt19937_64 rng;
uint64_t seed = 0;
unsigned seconds_per_call = 60;
std::string current_call;  // what runs now, for the time-out message
int failures = 0;

void on_alarm(int) {
  // Not async-signal-safe in general, but the process ends here anyway.
  std::fprintf(stderr, "radial_fuzz: FAIL (seed %" PRIu64 "): no answer within %u s: %s\n", seed,
               seconds_per_call, current_call.c_str());
  std::_Exit(1);
}

void fail(const std::string& what) {
  std::fprintf(stderr, "radial_fuzz: FAIL (seed %" PRIu64 "): %s\n  call: %s\n", seed,
               what.c_str(), current_call.c_str());
  ++failures;
}

// Boundary values most of the time, otherwise log-uniform magnitudes of either sign.
int64_t value(bool positive_bias = true) {
  static const int64_t edges[] = {0, 1, -1, 2, 3, 7, 16, 63, 64, 65, 127, 128, 129, 255, 256,
                                  1000, 3600, 65535, 65536, kI32Max - 1, kI32Max,
                                  kI32Max + int64_t{1}, int64_t{1} << 32, kI64Max - 1, kI64Max,
                                  kI64Min, kI64Min + 1, -2};
  std::uniform_int_distribution<int> pick(0, 9);
  if (pick(rng) < 5) return edges[rng() % std::size(edges)];
  const int bits = static_cast<int>(rng() % 63);
  int64_t v = static_cast<int64_t>(rng() >> (64 - std::max(bits, 1)));
  if (!positive_bias || rng() % 8 == 0) v = -v;
  return v;
}

// A size that plans quickly when valid (at most 360,000 tokens from two of them) most of the
// time; any value otherwise (large valid plans take seconds and gigabytes, as they should).
int64_t small_or_any() { return rng() % 3 ? static_cast<int64_t>(1 + rng() % 600) : value(); }

bool is_clear_error(radial_status status) {
  const std::string message = radial_last_error();
  if (status != RADIAL_ERROR_INVALID_ARGUMENT && status != RADIAL_ERROR_OUT_OF_MEMORY) {
    fail("status " + std::to_string(status) + " with message \"" + message + "\"");
    return false;
  }
  if (status == RADIAL_ERROR_INVALID_ARGUMENT &&
      (message.rfind("radial: ", 0) != 0 || message.find(": expected ") == std::string::npos ||
       message.find(", got ") == std::string::npos || std::strlen(radial_last_error_argument()) == 0)) {
    fail("unclear error message \"" + message + "\"");
    return false;
  }
  return true;
}

void check_plan(const radial_plan* plan, const radial_geometry& g) {
  radial_plan_info info{};
  if (radial_plan_get_info(plan, &info) != RADIAL_OK) return fail("get_info failed on a plan");
  const int64_t tokens = g.frames * g.tokens_per_frame + g.text_tokens;  // valid: no overflow
  const int64_t rows = (tokens + info.block_size - 1) / info.block_size;
  if (info.seq_len != tokens || info.block_rows != rows || info.block_cols != rows)
    return fail("plan sizes " + std::to_string(info.seq_len) + " tokens, " +
                std::to_string(info.block_rows) + " rows do not match the geometry");
  if (info.kept_blocks < rows || info.kept_blocks > radial::kMaxKeptBlocks)
    return fail("kept blocks " + std::to_string(info.kept_blocks) + " outside [rows, limit]");
  const int32_t *row_offset = nullptr, *col_index = nullptr;
  if (radial_plan_csr(plan, &row_offset, &col_index) != RADIAL_OK) return fail("csr failed");
  if (row_offset[0] != 0 || row_offset[rows] != info.kept_blocks)
    return fail("CSR offsets do not span the kept blocks");
}

void fuzz_abi_call(int n) {
  if (rng() % 3 == 0) {
    const int32_t model = rng() % 8 ? static_cast<int32_t>(rng() % RADIAL_MODEL_COUNT)
                                    : static_cast<int32_t>(value());
    const int64_t frames = rng() % 2 ? static_cast<int64_t>(1 + 4 * (rng() % 30)) : value();
    const int64_t h = rng() % 2 ? static_cast<int64_t>(16 * (1 + rng() % 64)) : value();
    const int64_t w = rng() % 2 ? static_cast<int64_t>(16 * (1 + rng() % 64)) : value();
    const int64_t text = rng() % 2 ? 0 : value(), valid = rng() % 2 ? -1 : value();
    char call[256];
    std::snprintf(call, sizeof call,
                  "#%d radial_geometry_from_video(%d, %" PRId64 ", %" PRId64 ", %" PRId64
                  ", %" PRId64 ", %" PRId64 ")",
                  n, model, frames, h, w, text, valid);
    current_call = call;
    radial_geometry g{};
    alarm(seconds_per_call);
    const radial_status status = radial_geometry_from_video(model, frames, h, w, text, valid, &g);
    alarm(0);
    if (status == RADIAL_OK) {
      if (g.frames < 1 || g.tokens_per_frame < 1 || g.tokens_per_frame > kI32Max ||
          g.frames > kI32Max / g.tokens_per_frame)
        fail("accepted a geometry of " + std::to_string(g.frames) + " x " +
             std::to_string(g.tokens_per_frame) + " tokens");
    } else {
      is_clear_error(status);
    }
    return;
  }
  radial_geometry g{small_or_any(), small_or_any(), rng() % 2 ? 0 : value(),
                    rng() % 2 ? -1 : value()};
  radial_plan_spec spec{};
  spec.pattern = rng() % 8 ? static_cast<int32_t>(rng() % 4 == 0) : static_cast<int32_t>(value());
  spec.model = rng() % 8 ? static_cast<int32_t>(rng() % RADIAL_MODEL_COUNT)
                         : static_cast<int32_t>(value());
  const double decays[] = {0.2, 1.0, 0.95, 1e-308, 5e-324, 0.0, -1.0, 1e308,
                           std::numeric_limits<double>::infinity(),
                           std::numeric_limits<double>::quiet_NaN()};
  spec.decay_factor = decays[rng() % std::size(decays)];
  spec.block_size = rng() % 4 ? (rng() % 2 ? 64 : 128) : static_cast<int32_t>(value());
  spec.decay_adjacent = static_cast<int32_t>(rng() % 2);
  const bool dense = rng() % 5 == 0;
  char call[320];
  std::snprintf(call, sizeof call,
                "#%d radial_plan_create%s({%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64
                "}, pattern %d, model %d, decay %g, block %d, adjacent %d)",
                n, dense ? "_dense" : "", g.frames, g.tokens_per_frame, g.text_tokens,
                g.text_valid, spec.pattern, spec.model, spec.decay_factor, spec.block_size,
                spec.decay_adjacent);
  current_call = call;
  radial_plan* plan = nullptr;
  alarm(seconds_per_call);
  const radial_status status = dense ? radial_plan_create_dense(&g, spec.block_size, &plan)
                                     : radial_plan_create(&g, &spec, &plan);
  alarm(0);
  if (status == RADIAL_OK) {
    if (!plan) return fail("RADIAL_OK without a plan");
    check_plan(plan, g);
    radial_plan_destroy(plan);
  } else {
    if (plan) fail("a failed call left a plan");
    is_clear_error(status);
  }
}

// ---- the CLI ----

std::string quoted(const std::string& s) { return "'" + s + "'"; }

std::string read_all(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string flag_value() {
  switch (rng() % 6) {
    case 0: return std::to_string(value());
    case 1: return std::to_string(1 + rng() % 300);
    case 2: return std::to_string(value()) + "0";  // past 64 bits, often
    case 3: {
      const char* words[] = {"", "abc", "1e-308", "1e-400", "1e400", "nan", "-0", "0x10",
                             "1.5", " 7", "inf", "99999999999999999999999"};
      return words[rng() % std::size(words)];
    }
    default: return std::to_string(rng() % 4000);
  }
}

void fuzz_cli_call(int n, const std::string& cli, const std::string& dir) {
  static const char* plan_flags[] = {"--frames", "--tokens-per-frame", "--video-frames",
                                     "--height", "--width", "--text-tokens", "--text-valid",
                                     "--decay-factor", "--block-size", "--model"};
  static const char* bench_flags[] = {"--batch", "--heads", "--head-dim", "--threads",
                                      "--dtype", "--seed"};
  const bool bench = rng() % 3 == 0;
  std::string args = bench ? "bench --backend cpu --iters 1 --warmup 0" : "plan";
  // Bench computes for real: keep its geometry small unless a flag is meant to be refused.
  if (bench) args += " --frames " + std::to_string(1 + rng() % 4) + " --tokens-per-frame " +
                     std::to_string(1 + rng() % 300);
  const int flags = 1 + static_cast<int>(rng() % 5);
  for (int i = 0; i < flags; ++i) {
    if (bench && rng() % 2) {
      const std::string f = bench_flags[rng() % std::size(bench_flags)];
      std::string v = flag_value();
      // Bench sizes are small (quick to compute) or past 2^36 or below 1 (to be refused): a
      // valid mid-size shape is real work, not a hang.
      if (f == "--batch" || f == "--heads" || f == "--head-dim") {
        const int64_t n = value();
        v = rng() % 2 ? std::to_string(1 + rng() % 8)
                      : std::to_string(n > 8 && n < (int64_t{1} << 36) ? -n : n);
      }
      if (f == "--dtype") v = rng() % 2 ? "fp32" : v;
      args += " " + f + " " + quoted(v);
    } else if (!bench) {
      args += std::string(" ") + plan_flags[rng() % std::size(plan_flags)] + " " +
              quoted(flag_value());
    }
  }
  if (!bench && rng() % 4 == 0) args += " --dense";
  if (!bench && rng() % 4 == 0) args += " --json";
  current_call = "#" + std::to_string(n) + " radial " + args;
  const std::string out = dir + "/out.txt", err = dir + "/err.txt";
  // `timeout` sends SIGKILL after the bound: the exit status is then 137.
  const std::string command = "timeout -s KILL " + std::to_string(seconds_per_call) + " " +
                              quoted(cli) + " " + args + " >" + quoted(out) + " 2>" +
                              quoted(err) + " </dev/null";
  const int status = std::system(command.c_str());
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  const std::string error = read_all(err);
  if (code == 137) return fail("no answer within " + std::to_string(seconds_per_call) + " s");
  if (code == 0) return;
  int lines = 0;
  for (char c : error) lines += c == '\n';
  if (code != 2 || lines != 1 || error.rfind("radial", 0) != 0)
    fail("exit code " + std::to_string(code) + " with stderr: " + error);
}

}  // namespace

int main(int argc, char** argv) {
  std::string cli;
  int abi_calls = 300, cli_calls = 100;
  seed = std::random_device{}();
  seed = (seed << 32) ^ std::random_device{}();
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], v = argv[i + 1];
    if (flag == "--cli") cli = v;
    else if (flag == "--seed") seed = std::stoull(v);
    else if (flag == "--abi-calls") abi_calls = std::stoi(v);
    else if (flag == "--cli-calls") cli_calls = std::stoi(v);
    else if (flag == "--seconds-per-call") seconds_per_call = static_cast<unsigned>(std::stoul(v));
    else {
      std::fprintf(stderr, "radial_fuzz: unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  if (const char* env = std::getenv("RADIAL_FUZZ_SEED")) seed = std::stoull(env);
  std::printf("radial_fuzz: seed %" PRIu64 " (replay with --seed %" PRIu64
              " or RADIAL_FUZZ_SEED), %d C ABI calls, %d CLI calls, %u s per call at most\n",
              seed, seed, abi_calls, cli.empty() ? 0 : cli_calls, seconds_per_call);
  std::fflush(stdout);
  std::signal(SIGALRM, on_alarm);
  rng.seed(seed);
  const auto start = std::chrono::steady_clock::now();
  // Calls that take long are named (they set how long a run takes, and how close to the bound).
  auto timed = [](auto&& call) {
    const auto t0 = std::chrono::steady_clock::now();
    call();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (s > 5.0) std::printf("radial_fuzz: %.1f s: %s\n", s, current_call.c_str());
  };
  for (int n = 0; n < abi_calls; ++n) timed([&] { fuzz_abi_call(n); });
  if (!cli.empty()) {
    char pattern[] = "/tmp/radial_fuzz_XXXXXX";
    const char* dir = mkdtemp(pattern);
    if (!dir) return 2;
    for (int n = 0; n < cli_calls; ++n) timed([&] { fuzz_cli_call(n, cli, dir); });
    std::system(("rm -rf " + quoted(dir)).c_str());
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("radial_fuzz: %d failures in %.1f s (seed %" PRIu64 ")\n", failures, seconds, seed);
  return failures ? 1 : 0;
}
