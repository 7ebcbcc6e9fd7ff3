// `radial plan`: plan one attention and report its size; optionally as JSON, a picture or the
// golden-file text dump.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "mask_dump.hpp"
#include "mask_png.hpp"
#include "options.hpp"
#include "radial/plan.hpp"

namespace radial_cli {

namespace {

// Per batch and head at this head dim, the usual size in both model families.
constexpr double kReportHeadDim = 128;

nlohmann::ordered_json plan_json(const radial::Plan& plan, const std::string& source,
                                 double plan_ms) {
  const auto& g = plan.geometry;
  const auto s = plan.stats();
  nlohmann::ordered_json j;
  j["model"] = radial::model_name(plan.spec.model);
  j["pattern"] = plan.spec.pattern == radial::Pattern::dense ? "dense" : "radial";
  if (!source.empty()) j["source"] = source;
  j["frames"] = g.frames;
  j["tokens_per_frame"] = g.tokens_per_frame;
  j["text_tokens"] = g.text_tokens;
  j["text_valid"] = g.valid_text();
  j["video_tokens"] = g.video_tokens();
  j["tokens"] = plan.seq_len;
  j["key_limit"] = plan.key_limit;
  j["decay_factor"] = plan.spec.decay_factor;
  j["decay_adjacent"] = plan.spec.decay_adjacent;
  j["block_size"] = plan.block_size();
  j["block_rows"] = plan.block_rows;
  j["block_cols"] = plan.block_cols;
  j["kept_blocks"] = s.kept_blocks;
  j["total_blocks"] = s.total_blocks;
  j["density"] = s.density;
  j["rows_given_diagonal"] = plan.rows_given_diagonal;
  j["flops_per_head_dim"] = s.flops_per_head_dim;
  j["dense_flops_per_head_dim"] = s.dense_flops_per_head_dim;
  j["flops_ratio"] = s.flops_ratio();
  j["plan_ms"] = plan_ms;
  return j;
}

void print_text(const radial::Plan& plan, const std::string& source, double plan_ms) {
  const auto& g = plan.geometry;
  const auto s = plan.stats();
  const bool dense = plan.spec.pattern == radial::Pattern::dense;
  std::printf("model           %s (%s", radial::model_name(plan.spec.model),
              dense ? "dense" : "radial");
  if (!dense)
    std::printf(", decay factor %s%s", format_decimal(plan.spec.decay_factor).c_str(),
                plan.spec.decay_adjacent ? ", adjacent frames decay" : "");
  std::printf(")\n");
  std::printf("geometry        %lld frames x %lld tokens/frame%s%s%s\n",
              static_cast<long long>(g.frames), static_cast<long long>(g.tokens_per_frame),
              source.empty() ? "" : " (from ", source.c_str(), source.empty() ? "" : ")");
  std::printf("tokens          %lld (video %lld", static_cast<long long>(plan.seq_len),
              static_cast<long long>(g.video_tokens()));
  if (g.text_tokens > 0)
    std::printf(", text %lld of which %lld valid", static_cast<long long>(g.text_tokens),
                static_cast<long long>(g.valid_text()));
  std::printf(")\n");
  std::printf("block grid      %d x %d of %d tokens (%lld blocks)\n", plan.block_rows,
              plan.block_cols, plan.block_size(), static_cast<long long>(s.total_blocks));
  std::printf("kept blocks     %lld", static_cast<long long>(s.kept_blocks));
  if (plan.rows_given_diagonal > 0)
    std::printf(" (%lld empty rows given their diagonal)",
                static_cast<long long>(plan.rows_given_diagonal));
  std::printf("\ndensity         %.4f (%.2f%%)\n", s.density, 100.0 * s.density);
  std::printf("FLOPs vs dense  %.4f (%.4g vs %.4g GFLOP per batch and head at head dim %g)\n",
              s.flops_ratio(), s.flops_per_head_dim * kReportHeadDim * 1e-9,
              s.dense_flops_per_head_dim * kReportHeadDim * 1e-9, kReportHeadDim);
  std::printf("planning time   %.3f ms\n", plan_ms);
}

}  // namespace

int run_plan(const PlanOptions& o) {
  const radial::Geometry geometry = o.geometry.resolve();
  const radial::PlanSpec spec = o.spec.spec(radial::parse_model(o.geometry.model));
  const auto start = std::chrono::steady_clock::now();
  const radial::Plan plan =
      o.spec.dense ? radial::make_dense_plan(geometry, spec.block_size, spec.model)
                   : radial::make_plan(geometry, spec);
  const double plan_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  const radial::Plan& shown = plan;

  const std::string source = o.geometry.describe_source();
  if (!o.dump_path.empty()) write_mask_dump_file(o.dump_path, shown);
  PngLayout png;
  if (!o.png_path.empty()) png = write_mask_png(o.png_path, shown);

  if (o.json) {
    auto j = plan_json(shown, source, plan_ms);
    if (!o.png_path.empty())
      j["png"] = {{"path", o.png_path}, {"width", png.width}, {"height", png.height},
                  {"pixels_per_block", png.scale}, {"blocks_per_pixel", png.down}};
    if (!o.dump_path.empty()) j["dump_mask"] = o.dump_path;
    std::cout << j.dump(2) << '\n';
    return 0;
  }
  print_text(shown, source, plan_ms);
  if (!o.png_path.empty()) {
    std::printf("png             %s (%lld x %lld px, ", o.png_path.c_str(),
                static_cast<long long>(png.width), static_cast<long long>(png.height));
    if (png.down > 1)
      std::printf("%lld x %lld blocks per pixel)\n", static_cast<long long>(png.down),
                  static_cast<long long>(png.down));
    else
      std::printf("%d px per block)\n", png.scale);
  }
  if (!o.dump_path.empty()) std::printf("mask dump       %s\n", o.dump_path.c_str());
  return 0;
}

}  // namespace radial_cli
