// A small progress display for long `radial bench` runs (Debian packages no C++ progress-bar
// library). Writes to stderr only, so stdout stays clean for --json and pipes.
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

namespace radial_cli {

class Progress {
 public:
  // enabled: draw at all (stderr is a TTY, or --progress was given). On a TTY the line is
  // redrawn in place; elsewhere (logs, CI) each update is its own line.
  Progress(std::string label, int total, bool enabled)
      : label_(std::move(label)), total_(total < 1 ? 1 : total), enabled_(enabled),
        tty_(isatty(STDERR_FILENO) == 1), start_(Clock::now()) {
    if (enabled_) draw();
  }
  ~Progress() { finish(); }
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void step(const std::string& what = {}) {
    if (done_ < total_) ++done_;
    what_ = what;
    if (enabled_) draw();
  }

  // Ends the redrawn line so that later output starts on a fresh one.
  void finish() {
    if (enabled_ && tty_ && !finished_) std::fputc('\n', stderr);
    finished_ = true;
  }

  static bool stderr_is_tty() { return isatty(STDERR_FILENO) == 1; }

 private:
  using Clock = std::chrono::steady_clock;

  void draw() {
    constexpr int width = 28;
    const int filled = static_cast<int>(static_cast<long long>(width) * done_ / total_);
    const double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
    std::string bar(static_cast<size_t>(filled), '#');
    bar.append(static_cast<size_t>(width - filled), '.');
    char eta[48] = "";
    // The remaining time assumes the steps left cost what the steps so far cost on average.
    if (done_ > 0 && done_ < total_)
      std::snprintf(eta, sizeof eta, ", ~%.1f s left", elapsed / done_ * (total_ - done_));
    std::fprintf(stderr, "%s%s [%s] %d/%d %.1f s%s%s%s", tty_ ? "\r\033[K" : "", label_.c_str(),
                 bar.c_str(), done_, total_, elapsed, eta, what_.empty() ? "" : "  ",
                 what_.c_str());
    if (!tty_) std::fputc('\n', stderr);
    std::fflush(stderr);
  }

  std::string label_, what_;
  int total_ = 1, done_ = 0;
  bool enabled_ = false, tty_ = false, finished_ = false;
  Clock::time_point start_;
};

}  // namespace radial_cli
