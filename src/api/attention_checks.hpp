// Checks shared by every attention entry point (defined in attention.cpp), so the reference,
// the CPU backend and the dispatcher report bad input the same way.
#pragma once

#include "radial/attention.hpp"

namespace radial::detail {

// How much of a plan the checks walk: its block lists always (O(kept blocks); the CPU
// backends, whose work dwarfs it), or not when the planner wrote them (the GPU backend, where
// the walk would cost up to a few ms of host time per call on the largest plans).
enum class PlanWalk { always, unless_planned };

// The plan is non-empty and its CSR is consistent with its size (the kernels trust it).
void validate_plan(const Plan& plan, PlanWalk walk = PlanWalk::always);
// q, k, v: non-null, positive sizes, head_dim <= 256, usable strides, one shape, dtype and
// device, seq == plan.seq_len.
void validate_inputs(const Plan& plan, const TensorView& q, const TensorView& k,
                     const TensorView& v, PlanWalk walk = PlanWalk::always);
// validate_attention_args (radial/attention.hpp) with the given walk.
void validate_attention_args(const Plan& plan, const TensorView& q, const TensorView& k,
                             const TensorView& v, const TensorView& out, PlanWalk walk);
// scale finite and >= 0 (0: default), threads >= 0.
void validate_options(const AttentionOptions& options);
// The tensors live in host memory (for the CPU backend and the reference); `who` names the
// caller in the message.
void require_host(const TensorView& q, const char* who);
// `t` (called `name` in messages) is a usable view with q's shape, dtype and device; when the
// kernels write it (`written`), no two of its elements share an address.
void validate_like_q(const TensorView& t, const char* name, const TensorView& q, bool written);
// The backend a call runs on, forward or backward: options checked, `automatic` resolved by
// q's device, and q's device checked against an explicit choice. Returns cpu or cuda.
Backend resolve_backend(const AttentionOptions& options, const TensorView& q);
// The softmax scale that `scale` stands for (0 means 1 / sqrt(head_dim)).
double resolve_scale(double scale, int64_t head_dim);

}  // namespace radial::detail
