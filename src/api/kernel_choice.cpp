// The kernel choice: defaults, the chooser, and its text form (kernel_choice.hpp).
#include "api/kernel_choice.hpp"

#include <charconv>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "radial/error.hpp"

namespace radial {
namespace {

template <class E>
using Names = std::vector<std::pair<E, const char*>>;

const Names<Family> kFamilies = {{Family::portable, "portable"}, {Family::hopper, "hopper"}};
const Names<Direction> kDirections = {{Direction::forward, "forward"},
                                      {Direction::backward, "backward"}};
const Names<PortableTile> kTiles = {{PortableTile::standard, "standard"},
                                    {PortableTile::eight_warps, "eight_warps"},
                                    {PortableTile::double_buffer, "double_buffer"}};
const Names<HopperSchedule> kSchedules = {{HopperSchedule::serial, "serial"},
                                          {HopperSchedule::overlap, "overlap"},
                                          {HopperSchedule::pingpong, "pingpong"},
                                          {HopperSchedule::q_registers, "q_registers"}};
const Names<RowOrder> kRowOrders = {{RowOrder::locality, "locality"},
                                    {RowOrder::heavy_first, "heavy_first"},
                                    {RowOrder::natural, "natural"}};
const Names<Precision> kPrecisions = {{Precision::native, "native"}, {Precision::fp8, "fp8"}};
const Names<Variant> kVariants = {
    {Variant::standard, "standard"},
    {Variant::fp8_no_key_bias, "fp8_no_key_bias"},
    {Variant::fp8_direct_o, "fp8_direct_o"},
    {Variant::fp8_no_key_bias_direct_o, "fp8_no_key_bias_direct_o"},
    {Variant::fp8_quantize_only, "fp8_quantize_only"},
    {Variant::fp8_fma_o, "fp8_fma_o"},
    {Variant::fp8_late_wait, "fp8_late_wait"},
    {Variant::fp8_fma_o_late_wait, "fp8_fma_o_late_wait"},
    {Variant::fp8_prefetch, "fp8_prefetch"},
    {Variant::fp8_round3, "fp8_round3"},
    {Variant::fp8_no_key_bias_round3, "fp8_no_key_bias_round3"},
    {Variant::fp8_bias_vec, "fp8_bias_vec"},
    {Variant::fp8_round3_bias_vec, "fp8_round3_bias_vec"},
    {Variant::fp8_sum_tensor, "fp8_sum_tensor"},
    {Variant::fp8_round3_sum_tensor, "fp8_round3_sum_tensor"},
    {Variant::fp8_key_bias, "fp8_key_bias"},
    {Variant::fp8_bias_in_v_fma_o, "fp8_bias_in_v_fma_o"},
    {Variant::fp8_pairs, "fp8_pairs"},
    {Variant::fp8_poly_exp_quarter, "fp8_poly_exp_quarter"},
    {Variant::fp8_poly_exp_half, "fp8_poly_exp_half"},
    {Variant::fp8_lazy_rescale, "fp8_lazy_rescale"},
    {Variant::fp8_lazy_poly, "fp8_lazy_poly"},
    {Variant::fp8_global_meta, "fp8_global_meta"},
    {Variant::fp8_q_registers, "fp8_q_registers"},
    {Variant::fp8_two_warpgroups, "fp8_two_warpgroups"},
    {Variant::fp8_wg3_whole_pv, "fp8_wg3_whole_pv"},
    {Variant::fp8_wg3_five_stages, "fp8_wg3_five_stages"},
    {Variant::fp8_wg3_poly_exp_quarter, "fp8_wg3_poly_exp_quarter"},
    {Variant::fp8_wg3_trace, "fp8_wg3_trace"},
    {Variant::fp8_wg3_ring, "fp8_wg3_ring"},
    {Variant::fp8_wg3_ring_trace, "fp8_wg3_ring_trace"},
    {Variant::fp8_wg3_s_halves, "fp8_wg3_s_halves"},
    {Variant::fp8_wg3_ring_convoy, "fp8_wg3_ring_convoy"},
    {Variant::fp8_wg3_pv_overlap, "fp8_wg3_pv_overlap"},
    {Variant::fp8_wg3_ring_s_halves, "fp8_wg3_ring_s_halves"},
    {Variant::fp8_wg3_s_halves_pv_overlap, "fp8_wg3_s_halves_pv_overlap"},
    {Variant::fp8_wg3_round8, "fp8_wg3_round8"},
    {Variant::fp8_wg3_round9, "fp8_wg3_round9"},
    {Variant::fp8_wg3_round9_tree_max, "fp8_wg3_round9_tree_max"},
    {Variant::fp8_wg3_round9_uniform_loop, "fp8_wg3_round9_uniform_loop"},
    {Variant::fp8_wg3_round10, "fp8_wg3_round10"},
    {Variant::fp8_wg3_s_f16_lookahead, "fp8_wg3_s_f16_lookahead"},
    {Variant::fp8_wg3_s_f16_ss_p, "fp8_wg3_s_f16_ss_p"},
    {Variant::fp8_wg3_f16_poly_quarter, "fp8_wg3_f16_poly_quarter"},
    {Variant::fp8_wg3_f16_poly_half, "fp8_wg3_f16_poly_half"},
    {Variant::fp8_wg3_f16_poly_three_quarters, "fp8_wg3_f16_poly_three_quarters"},
    {Variant::fp8_wg3_round11, "fp8_wg3_round11"},
    {Variant::fp8_wg3_f16_poly_three_eighths, "fp8_wg3_f16_poly_three_eighths"},
    {Variant::fp8_wg3_f16_s_late, "fp8_wg3_f16_s_late"},
    {Variant::fp8_wg3_pair_step, "fp8_wg3_pair_step"},
    {Variant::fp8_wg3_round12, "fp8_wg3_round12"},
    {Variant::bf16_late_wait, "bf16_late_wait"},
    {Variant::bwd_rs_dv, "bwd_rs_dv"},
    {Variant::bwd_ss, "bwd_ss"},
    {Variant::bwd_early_dk, "bwd_early_dk"},
    {Variant::bwd_consumer_loads, "bwd_consumer_loads"},
    {Variant::bwd_consumer_dq, "bwd_consumer_dq"},
    {Variant::bwd_sts_ds, "bwd_sts_ds"},
    {Variant::bwd_lds64, "bwd_lds64"},
    {Variant::bwd_dq_boxes, "bwd_dq_boxes"},
    {Variant::bwd_mask_select, "bwd_mask_select"},
};
const Names<bool> kSwitches = {{true, "on"}, {false, "off"}};

template <class E>
const char* name_of(const Names<E>& names, E value) {
  for (const auto& [v, name] : names)
    if (v == value) return name;
  return "?";
}

template <class E>
std::string alternatives(const Names<E>& names) {
  std::string text;
  for (size_t i = 0; i < names.size(); ++i) {
    text += i == 0 ? "" : i + 1 == names.size() ? " or " : ", ";
    text += names[i].second;
  }
  return text;
}

template <class E>
E parse_value(const Names<E>& names, const std::string& field, const std::string& value) {
  for (const auto& [v, name] : names)
    if (value == name) return v;
  throw Error("choice." + field, alternatives(names), "\"" + value + "\"");
}

std::string trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return std::string(s);
}

}  // namespace

const char* family_name(Family family) { return name_of(kFamilies, family); }
const char* direction_name(Direction direction) { return name_of(kDirections, direction); }
const char* tile_name(PortableTile tile) { return name_of(kTiles, tile); }
const char* schedule_name(HopperSchedule schedule) { return name_of(kSchedules, schedule); }
const char* row_order_name(RowOrder order) { return name_of(kRowOrders, order); }
const char* variant_name(Variant variant) { return name_of(kVariants, variant); }
bool fp8_variant(Variant variant) {
  return std::string_view(variant_name(variant)).substr(0, 4) == "fp8_";
}
bool bwd_variant(Variant variant) {
  return std::string_view(variant_name(variant)).substr(0, 4) == "bwd_";
}

bool hopper_kernel_built() {
#ifdef RADIAL_WITH_HOPPER
  return true;
#else
  return false;
#endif
}

bool ablation_kernels_built() {
#ifdef RADIAL_ABLATION_KERNELS
  return true;
#else
  return false;
#endif
}

KernelChoice default_choice(Family family, Direction direction) {
  KernelChoice c;
  c.family = family;
  c.direction = direction;
  return c;  // the field defaults are the library's choices (kernel_choice.hpp)
}

KernelChoice choose_kernel(int arch, DType dtype, int head_dim, int block_size,
                           Direction direction, bool deterministic, Precision precision) {
  const bool backward = direction == Direction::backward;
  if (precision == Precision::fp8) {
    const std::string fp8 = "fp8";
    require(!backward, "precision", "native for the backward (fp8 is a forward precision)", fp8);
    require(arch == 90, "precision",
            "native on this device (fp8 runs on compute capability 9.0, FP8 tensor cores)",
            fp8 + " on compute capability " +
                (arch < 0 ? std::string("unknown")
                          : std::to_string(arch / 10) + "." + std::to_string(arch % 10)));
    require(hopper_kernel_built(), "precision",
            "native in this build (fp8 needs the Hopper kernel: CuTe at build time)", fp8);
    require(dtype == DType::bf16 || dtype == DType::f16, "precision",
            "native for q.dtype " + std::string(dtype_name(dtype)) + " (fp8 takes bf16 or f16)",
            fp8);
    require(head_dim == 64 || head_dim == 128, "precision",
            "native for head dim " + std::to_string(head_dim) + " (fp8 takes 64 or 128)", fp8);
    require(block_size == 128, "precision",
            "native for block size " + std::to_string(block_size) + " (fp8 takes 128)", fp8);
    KernelChoice c = default_choice(Family::hopper, direction);
    c.precision = Precision::fp8;
    return c;
  }
  // The Hopper backward adds dQ by float32 reductions in arrival order, so a deterministic
  // backward runs portable. (On an H200, bf16, head dim 128, 40 heads of 18,432 tokens, the
  // Hopper backward took 25.9 ms against the portable kernel's 49.7 with a radial plan, 41.0
  // against 79.2 dense.)
  const bool hopper_covers = arch == 90 && hopper_kernel_built() &&
                             (dtype == DType::bf16 || dtype == DType::f16) &&
                             (head_dim == 64 || head_dim == 128) && block_size == 128 &&
                             !(backward && deterministic);
  KernelChoice c = default_choice(hopper_covers ? Family::hopper : Family::portable, direction);
  c.deterministic = backward && deterministic;
  return c;
}

KernelChoice parse_choice(std::string_view text) {
  std::map<std::string, std::string> fields;
  std::vector<std::string> order;  // as named, for the family checks below
  while (!text.empty()) {
    const size_t comma = text.find(',');
    const std::string item = trim(text.substr(0, comma));
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    require(eq != std::string::npos, "choice", "field=value pairs separated by commas",
            "\"" + item + "\"");
    const std::string field = trim(std::string_view(item).substr(0, eq));
    const std::string value = trim(std::string_view(item).substr(eq + 1));
    require(fields.count(field) == 0, "choice." + field, "each field named once", "it twice");
    fields[field] = value;
    order.push_back(field);
  }
  const auto has = [&](const char* f) { return fields.count(f) > 0; };
  const Family family =
      has("family") ? parse_value(kFamilies, "family", fields["family"]) : Family::portable;
  const Direction direction = has("direction")
                                  ? parse_value(kDirections, "direction", fields["direction"])
                                  : Direction::forward;
  KernelChoice c = default_choice(family, direction);
  const std::string only = std::string("family=") + family_name(family);
  for (const std::string& field : order) {
    const std::string& value = fields[field];
    if (field == "family" || field == "direction") continue;
    if (field == "row_order") {
      c.row_order = parse_value(kRowOrders, field, value);
    } else if (field == "tile") {
      require(family == Family::portable, "choice.tile", "no tile with " + only +
              " (a field of family=portable)", value);
      c.tile = parse_value(kTiles, field, value);
    } else if (field == "l2_prefetch") {
      require(family == Family::portable, "choice.l2_prefetch",
              "no l2_prefetch with " + only + " (a field of family=portable)", value);
      c.l2_prefetch = parse_value(kSwitches, field, value);
    } else if (field == "schedule") {
      require(family == Family::hopper, "choice.schedule",
              "no schedule with " + only + " (a field of family=hopper)", value);
      c.schedule = parse_value(kSchedules, field, value);
    } else if (field == "persistent") {
      require(family == Family::hopper, "choice.persistent",
              "no persistent with " + only + " (a field of family=hopper)", value);
      c.persistent = parse_value(kSwitches, field, value);
    } else if (field == "deterministic") {
      require(family == Family::portable && direction == Direction::backward,
              "choice.deterministic",
              "no deterministic with " + only + ", direction=" + direction_name(direction) +
                  " (a field of family=portable,direction=backward)",
              value);
      c.deterministic = parse_value(kSwitches, field, value);
    } else if (field == "precision") {
      c.precision = parse_value(kPrecisions, field, value);
      require(c.precision == Precision::native ||
                  (family == Family::hopper && direction == Direction::forward),
              "choice.precision", "native with " + only + ", direction=" +
                  direction_name(direction) + " (fp8 is a field of family=hopper, forward)",
              value);
    } else if (field == "variant") {
      require(family == Family::hopper, "choice.variant",
              "no variant with " + only + " (a field of family=hopper)", value);
      c.variant = parse_value(kVariants, field, value);
    } else if (field == "max_ctas") {
      int n = -1;
      const auto [end, status] = std::from_chars(value.data(), value.data() + value.size(), n);
      require(status == std::errc() && end == value.data() + value.size() && n >= 0,
              "choice.max_ctas", "an integer >= 0", "\"" + value + "\"");
      c.max_ctas = n;
    } else {
      throw Error("choice", "fields family, direction, tile, schedule, row_order, persistent, "
                  "max_ctas, l2_prefetch, deterministic, precision, variant",
                  "\"" + field + "\"");
    }
  }
  require(c.max_ctas == 0 || c.persistent, "choice.max_ctas", "0 unless persistent=on",
          c.max_ctas);
  require(!fp8_variant(c.variant) || c.precision == Precision::fp8, "choice.variant",
          "an fp8_ variant only with precision=fp8", variant_name(c.variant));
  require(!bwd_variant(c.variant) || direction == Direction::backward, "choice.variant",
          "a bwd_ variant only with direction=backward", variant_name(c.variant));
  return c;
}

std::string format_choice(const KernelChoice& c) {
  std::string text = std::string("family=") + family_name(c.family) +
                     ",direction=" + direction_name(c.direction);
  if (c.family == Family::portable) {
    text += std::string(",tile=") + tile_name(c.tile);
  } else {
    text += std::string(",schedule=") + schedule_name(c.schedule);
  }
  text += std::string(",row_order=") + row_order_name(c.row_order);
  if (c.family == Family::portable) {
    text += std::string(",l2_prefetch=") + (c.l2_prefetch ? "on" : "off");
    if (c.direction == Direction::backward) {
      text += std::string(",deterministic=") + (c.deterministic ? "on" : "off");
    }
  } else {
    text += std::string(",persistent=") + (c.persistent ? "on" : "off");
    if (c.max_ctas > 0) text += ",max_ctas=" + std::to_string(c.max_ctas);
    if (c.precision != Precision::native) text += ",precision=fp8";
    if (c.variant != Variant::standard) text += std::string(",variant=") + variant_name(c.variant);
  }
  return text;
}

}  // namespace radial
