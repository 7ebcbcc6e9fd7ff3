// What the planner leaves on its plans: the model of a dense plan, and the mark that lets the
// GPU backend's checks trust the block lists it wrote (and only those: copies and hand-made
// plans are walked).
#include <gtest/gtest.h>

#include <string>

#include "api/attention_checks.hpp"
#include "plan/plan_access.hpp"
#include "radial/error.hpp"
#include "radial/plan.hpp"

namespace radial {
namespace {

Geometry geom(int64_t frames, int64_t tokens) {
  Geometry g;
  g.frames = frames, g.tokens_per_frame = tokens;
  return g;
}

TEST(PlanAccess, PlannerMarksItsOwnBlockListsOnly) {
  PlanSpec spec;
  spec.model = Model::hunyuan, spec.decay_factor = 0.95;
  const Plan plan = make_plan(geom(6, 300), spec);
  EXPECT_TRUE(detail::PlanAccess::planned(plan));
  const Plan dense = make_dense_plan(geom(6, 300), 64, Model::hunyuan);
  EXPECT_TRUE(detail::PlanAccess::planned(dense));
  const Plan copy = plan;  // its own buffer: not what the planner wrote
  EXPECT_FALSE(detail::PlanAccess::planned(copy));
  Plan by_hand;
  by_hand.col_index = plan.col_index;
  EXPECT_FALSE(detail::PlanAccess::planned(by_hand));
}

TEST(PlanAccess, EditedCopiesAreWalkedEvenWhereThePlannersAreTrusted) {
  Plan copy = make_plan(geom(4, 256), PlanSpec{});
  copy = Plan(copy);
  copy.col_index.back() = copy.block_cols + 2;
  try {
    detail::validate_plan(copy, detail::PlanWalk::unless_planned);
    ADD_FAILURE() << "a corrupt copy passed";
  } catch (const Error& e) {
    EXPECT_EQ(e.argument(), "plan.col_index") << e.what();
  }
}

TEST(PlanAccess, DensePlansRecordTheirModel) {
  EXPECT_EQ(make_dense_plan(geom(3, 200), 128, Model::hunyuan).spec.model, Model::hunyuan);
  EXPECT_EQ(make_dense_plan(geom(3, 200), 128).spec.model, Model::wan);
  PlanSpec spec;
  spec.pattern = Pattern::dense, spec.model = Model::hunyuan;
  EXPECT_EQ(make_plan(geom(3, 200), spec).spec.model, Model::hunyuan);
  EXPECT_EQ(make_plan(geom(3, 200), spec).spec.pattern, Pattern::dense);
}

}  // namespace
}  // namespace radial
