// The kernel choice without a GPU: its text form (every field by name, round trips, errors
// naming the field) and the chooser's pick per architecture, dtype, head dim, block and
// direction.
#include <gtest/gtest.h>

#include <string>

#include "api/kernel_choice.hpp"
#include "radial/error.hpp"
#include "error_checks.hpp"

namespace radial {
namespace {

std::string refused_field(const std::string& text) {
  return thrown_by([&] { parse_choice(text); }).argument;
}

TEST(KernelChoice, ParsesEveryField) {
  const KernelChoice h = parse_choice("family=hopper, schedule=serial,persistent=on,max_ctas=3");
  EXPECT_EQ(h.family, Family::hopper);
  EXPECT_EQ(h.direction, Direction::forward);
  EXPECT_EQ(h.schedule, HopperSchedule::serial);
  EXPECT_TRUE(h.persistent);
  EXPECT_EQ(h.max_ctas, 3);
  EXPECT_EQ(h.row_order, RowOrder::locality);

  const KernelChoice p =
      parse_choice("row_order=heavy_first,l2_prefetch=on,tile=double_buffer,direction=backward");
  EXPECT_EQ(p.family, Family::portable);
  EXPECT_EQ(p.direction, Direction::backward);
  EXPECT_EQ(p.tile, PortableTile::double_buffer);
  EXPECT_EQ(p.row_order, RowOrder::heavy_first);
  EXPECT_TRUE(p.l2_prefetch);
  EXPECT_EQ(parse_choice("row_order=natural").row_order, RowOrder::natural);
  EXPECT_EQ(parse_choice("family=portable,tile=eight_warps").tile, PortableTile::eight_warps);
  EXPECT_EQ(parse_choice("family=hopper,schedule=pingpong").schedule, HopperSchedule::pingpong);
  EXPECT_EQ(parse_choice("family=hopper,schedule=overlap").schedule, HopperSchedule::overlap);
}

TEST(KernelChoice, UnnamedFieldsAreTheFamilyDefaults) {
  EXPECT_EQ(parse_choice(""), default_choice(Family::portable));
  EXPECT_EQ(parse_choice("family=hopper"), default_choice(Family::hopper));
  const KernelChoice h = default_choice(Family::hopper);
  EXPECT_EQ(h.schedule, HopperSchedule::q_registers);
  EXPECT_FALSE(h.persistent);
  EXPECT_EQ(h.row_order, RowOrder::locality);
  const KernelChoice p = default_choice(Family::portable);
  EXPECT_EQ(p.tile, PortableTile::standard);
  EXPECT_FALSE(p.l2_prefetch);
  EXPECT_EQ(p.row_order, RowOrder::locality);
}

TEST(KernelChoice, FormatRoundTrips) {
  const char* texts[] = {"family=portable", "family=hopper", "family=hopper,persistent=on,max_ctas=5",
                         "family=portable,tile=eight_warps,row_order=natural",
                         "family=portable,l2_prefetch=on,row_order=heavy_first",
                         "family=hopper,schedule=pingpong,direction=backward"};
  for (const char* text : texts) {
    const KernelChoice c = parse_choice(text);
    EXPECT_EQ(parse_choice(format_choice(c)), c) << text << " -> " << format_choice(c);
  }
  EXPECT_EQ(format_choice(default_choice(Family::hopper)),
            "family=hopper,direction=forward,schedule=q_registers,row_order=locality,"
            "persistent=off");
  EXPECT_EQ(format_choice(default_choice(Family::portable)),
            "family=portable,direction=forward,tile=standard,row_order=locality,"
            "l2_prefetch=off");
}

TEST(KernelChoice, BadTextNamesTheField) {
  EXPECT_EQ(refused_field("family=ampere"), "choice.family");
  EXPECT_EQ(refused_field("family=hopper,schedule=fast"), "choice.schedule");
  EXPECT_EQ(refused_field("tile=sixteen_warps"), "choice.tile");
  EXPECT_EQ(refused_field("row_order=random"), "choice.row_order");
  EXPECT_EQ(refused_field("direction=sideways"), "choice.direction");
  EXPECT_EQ(refused_field("family=hopper,persistent=yes"), "choice.persistent");
  EXPECT_EQ(refused_field("l2_prefetch=1"), "choice.l2_prefetch");
  EXPECT_EQ(refused_field("family=hopper,persistent=on,max_ctas=-1"), "choice.max_ctas");
  EXPECT_EQ(refused_field("family=hopper,persistent=on,max_ctas=3x"), "choice.max_ctas");
  EXPECT_EQ(refused_field("family=hopper,max_ctas=3"), "choice.max_ctas");  // not persistent
  EXPECT_EQ(refused_field("warps=8"), "choice");
  EXPECT_EQ(refused_field("hopper"), "choice");
  EXPECT_EQ(refused_field("row_order=natural,row_order=locality"), "choice.row_order");
  // Fields of the other family are refused, not ignored.
  EXPECT_EQ(refused_field("family=hopper,tile=eight_warps"), "choice.tile");
  EXPECT_EQ(refused_field("family=hopper,l2_prefetch=on"), "choice.l2_prefetch");
  EXPECT_EQ(refused_field("family=portable,schedule=serial"), "choice.schedule");
  EXPECT_EQ(refused_field("persistent=on"), "choice.persistent");
  const Thrown fast = thrown_by([] { parse_choice("family=hopper,schedule=fast"); });
  EXPECT_EQ(fast.argument, "choice.schedule");
  EXPECT_NE(fast.message.find("serial, overlap, pingpong or q_registers"), std::string::npos)
      << fast.message;
}

std::string refused_precision(int arch, DType dtype, int dim, int block,
                              Direction direction = Direction::forward) {
  return thrown_by([&] {
           choose_kernel(arch, dtype, dim, block, direction, false, Precision::fp8);
         }).argument;
}

TEST(KernelChoice, Fp8IsAHopperForwardField) {
  const KernelChoice c = parse_choice("family=hopper,precision=fp8");
  EXPECT_EQ(c.precision, Precision::fp8);
  EXPECT_EQ(parse_choice(format_choice(c)), c);
  EXPECT_NE(format_choice(c).find("precision=fp8"), std::string::npos);
  EXPECT_EQ(parse_choice("family=hopper,precision=native"), default_choice(Family::hopper));
  EXPECT_EQ(refused_field("family=portable,precision=fp8"), "choice.precision");
  EXPECT_EQ(refused_field("family=hopper,direction=backward,precision=fp8"), "choice.precision");
  EXPECT_EQ(refused_field("family=hopper,precision=int8"), "choice.precision");
}

TEST(KernelChoice, ChooserRefusesFp8WhereItDoesNotRun) {
  const Direction bwd = Direction::backward;
  if (hopper_kernel_built()) {
    KernelChoice fp8 = default_choice(Family::hopper);
    fp8.precision = Precision::fp8;
    EXPECT_EQ(choose_kernel(90, DType::bf16, 128, 128, Direction::forward, false,
                            Precision::fp8),
              fp8);
    EXPECT_EQ(choose_kernel(90, DType::f16, 64, 128, Direction::forward, false, Precision::fp8),
              fp8);
  } else {
    EXPECT_EQ(refused_precision(90, DType::bf16, 128, 128), "precision");
  }
  for (int arch : {80, 86, 89, 100, 120}) {
    EXPECT_EQ(refused_precision(arch, DType::bf16, 128, 128), "precision") << arch;
  }
  EXPECT_EQ(refused_precision(90, DType::bf16, 128, 64), "precision");
  EXPECT_EQ(refused_precision(90, DType::bf16, 96, 128), "precision");
  EXPECT_EQ(refused_precision(90, DType::f32, 128, 128), "precision");
  EXPECT_EQ(refused_precision(90, DType::bf16, 128, 128, bwd), "precision");
  const Thrown ada = thrown_by([] {
    choose_kernel(89, DType::bf16, 128, 128, Direction::forward, false, Precision::fp8);
  });
  EXPECT_EQ(ada.argument, "precision");
  EXPECT_NE(ada.message.find("compute capability 8.9"), std::string::npos) << ada.message;
}

TEST(KernelChoice, BwdVariantsNeedDirectionBackward) {
  for (const char* name :
       {"bwd_rs_dv", "bwd_ss", "bwd_early_dk", "bwd_consumer_loads", "bwd_consumer_dq",
        "bwd_sts_ds", "bwd_lds64", "bwd_dq_boxes", "bwd_mask_select"}) {
    SCOPED_TRACE(name);
    const KernelChoice c =
        parse_choice(std::string("family=hopper,direction=backward,variant=") + name);
    EXPECT_EQ(variant_name(c.variant), std::string(name));
    EXPECT_TRUE(bwd_variant(c.variant));
    EXPECT_FALSE(fp8_variant(c.variant));
    EXPECT_EQ(c.direction, Direction::backward);
    // Format / parse round trip, the variant printed.
    EXPECT_EQ(parse_choice(format_choice(c)), c);
    EXPECT_NE(format_choice(c).find(std::string("variant=") + name), std::string::npos);
    // Field order does not matter for the cross-field check.
    EXPECT_EQ(parse_choice(std::string("variant=") + name + ",direction=backward,family=hopper"),
              c);
    // Forward (named or by default) or the portable family: refused, naming the field.
    EXPECT_EQ(refused_field(std::string("family=hopper,variant=") + name), "choice.variant");
    EXPECT_EQ(refused_field(std::string("family=hopper,direction=forward,variant=") + name),
              "choice.variant");
    EXPECT_EQ(refused_field(std::string("family=portable,direction=backward,variant=") + name),
              "choice.variant");
  }
  EXPECT_FALSE(bwd_variant(Variant::standard));
  EXPECT_FALSE(bwd_variant(Variant::fp8_direct_o));
  // The chooser never picks one; the library's backward choice has the standard variant.
  for (DType dtype : {DType::bf16, DType::f16}) {
    for (int d : {64, 128}) {
      EXPECT_EQ(choose_kernel(90, dtype, d, 128, Direction::backward).variant, Variant::standard);
    }
  }
  EXPECT_EQ(default_choice(Family::hopper, Direction::backward).variant, Variant::standard);
}

TEST(KernelChoice, ChooserPicksHopperOnlyWhereItCovers) {
  const Family hopper = hopper_kernel_built() ? Family::hopper : Family::portable;
  const Direction fwd = Direction::forward;
  EXPECT_EQ(choose_kernel(90, DType::bf16, 128, 128, fwd), default_choice(hopper));
  EXPECT_EQ(choose_kernel(90, DType::f16, 64, 128, fwd), default_choice(hopper));
  // Not compute capability 9.0, block 64, head dim or dtype the Hopper kernel lacks: portable.
  for (int arch : {80, 86, 89, 100, 120}) {
    EXPECT_EQ(choose_kernel(arch, DType::bf16, 128, 128, fwd), default_choice(Family::portable))
        << arch;
  }
  EXPECT_EQ(choose_kernel(90, DType::bf16, 128, 64, fwd), default_choice(Family::portable));
  EXPECT_EQ(choose_kernel(90, DType::bf16, 96, 128, fwd), default_choice(Family::portable));
  EXPECT_EQ(choose_kernel(90, DType::f32, 128, 128, fwd), default_choice(Family::portable));
  // Backward: the same rule (direction kept), except that a deterministic backward runs the
  // portable kernel (the Hopper backward adds dQ by atomics), with the field set.
  const Direction bwd = Direction::backward;
  EXPECT_EQ(choose_kernel(90, DType::bf16, 128, 128, bwd), default_choice(hopper, bwd));
  EXPECT_EQ(choose_kernel(90, DType::bf16, 128, 64, bwd), default_choice(Family::portable, bwd));
  EXPECT_EQ(choose_kernel(80, DType::f16, 64, 128, bwd), default_choice(Family::portable, bwd));
  KernelChoice deterministic = default_choice(Family::portable, bwd);
  deterministic.deterministic = true;
  EXPECT_EQ(choose_kernel(90, DType::bf16, 128, 128, bwd, true), deterministic);
  EXPECT_EQ(parse_choice(format_choice(deterministic)), deterministic);
  // The field belongs to portable backward choices only.
  EXPECT_THROW(parse_choice("family=portable,deterministic=on"), Error);
  EXPECT_THROW(parse_choice("family=hopper,direction=backward,deterministic=on"), Error);
}

TEST(KernelChoice, VariantIsAHopperFieldAndFp8VariantsNeedFp8) {
  const KernelChoice c = parse_choice("family=hopper,precision=fp8,variant=fp8_no_key_bias");
  EXPECT_EQ(c.variant, Variant::fp8_no_key_bias);
  EXPECT_TRUE(fp8_variant(c.variant));
  EXPECT_FALSE(fp8_variant(Variant::standard));
  EXPECT_EQ(parse_choice(format_choice(c)), c);
  EXPECT_NE(format_choice(c).find("variant=fp8_no_key_bias"), std::string::npos);
  // The library's variant is not printed, and naming it changes nothing.
  EXPECT_EQ(format_choice(default_choice(Family::hopper)).find("variant"), std::string::npos);
  EXPECT_EQ(parse_choice("family=hopper,variant=standard"), default_choice(Family::hopper));
  // Field order does not matter for the cross-field check.
  EXPECT_EQ(parse_choice("family=hopper,variant=fp8_direct_o,precision=fp8").variant,
            Variant::fp8_direct_o);
  EXPECT_EQ(refused_field("family=portable,variant=standard"), "choice.variant");
  EXPECT_EQ(refused_field("family=hopper,variant=fp8_direct_o"), "choice.variant");
  EXPECT_EQ(refused_field("family=hopper,precision=fp8,variant=fast"), "choice.variant");
  // The chooser never picks a comparison variant.
  if (hopper_kernel_built()) {
    EXPECT_EQ(choose_kernel(90, DType::bf16, 128, 128, Direction::forward, false, Precision::fp8)
                  .variant,
              Variant::standard);
  }
}

// Every variant's name parses back to it (the fp8_ ones with precision=fp8, the bwd_ ones with
// direction=backward); bf16_late_wait belongs to the native Hopper kernel and is refused with
// precision=fp8 only at dispatch. Variant::bwd_mask_select is the enum's last value.
TEST(KernelChoice, EveryVariantNameRoundTrips) {
  for (int i = 0; i <= static_cast<int>(Variant::bwd_mask_select); ++i) {
    const Variant v = static_cast<Variant>(i);
    const std::string name = variant_name(v);
    SCOPED_TRACE(name);
    EXPECT_NE(name, "?");
    const bool backward = name.rfind("bwd_", 0) == 0;
    const std::string text = std::string("family=hopper,") +
                             (backward ? "direction=backward," : "") +
                             (fp8_variant(v) ? "precision=fp8," : "") + "variant=" + name;
    const KernelChoice c = parse_choice(text);
    EXPECT_EQ(c.variant, v);
    EXPECT_EQ(parse_choice(format_choice(c)), c);
  }
  EXPECT_FALSE(fp8_variant(Variant::bf16_late_wait));
  EXPECT_TRUE(fp8_variant(Variant::fp8_round3));
  EXPECT_TRUE(fp8_variant(Variant::fp8_round3_bias_vec));
  EXPECT_TRUE(fp8_variant(Variant::fp8_round3_sum_tensor));
  EXPECT_EQ(refused_field("family=hopper,variant=fp8_round3"), "choice.variant");
  EXPECT_EQ(refused_field("family=portable,variant=bf16_late_wait"), "choice.variant");
}

}  // namespace
}  // namespace radial
