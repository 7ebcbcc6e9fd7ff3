// The library's access to a Plan's private parts: the GPU backend's cache, and the mark the
// planner leaves on the block lists it wrote (which the GPU backend's checks trust).
#pragma once

#include <memory>

#include "radial/plan.hpp"

namespace radial::detail {

struct PlanAccess {
  // The CUDA backend's cache; read and written only under its upload lock (plan_upload.cpp).
  static std::shared_ptr<PlanDeviceCache>& cache(const Plan& plan) { return plan.device_cache_; }
  // Called by the planner on the plans it returns.
  static void mark_planned(Plan& plan) { plan.planned_cols_ = plan.col_index.data(); }
  // True while the plan's column lists are the buffer its planner wrote.
  static bool planned(const Plan& plan) {
    return plan.planned_cols_ != nullptr && plan.planned_cols_ == plan.col_index.data();
  }
};

}  // namespace radial::detail
