// Finite-difference gradient checks of the CPU kernels and of the whole model, in double
// precision (the kernels are templates; double instantiations exist for this). Test-only: exposed
// to JS as `_gradCheck`; the tolerances live in the tests.
//
// Every check compares, at sampled coordinates x_i, the analytic gradient a_i of a scalar f with
// the central difference n_i = (f(x + h·e_i) − f(x − h·e_i)) / 2h, h = 1e-5 (relative to |x_i| when
// that is larger), and reports max |a − n| and max |a − n| / max(|a|, |n|, 1e-8).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model_config.h"

namespace connito {

struct GradCheckResult {
  std::string op;      // e.g. "rmsnorm", "attention.dq", "model:model.layers.1.mlp.experts.3.down_proj"
  int64_t checked = 0;  // coordinates compared
  int64_t skipped = 0;  // coordinates where the perturbation changed a discrete choice (top-k)
  double max_abs_err = 0, max_rel_err = 0, max_abs_grad = 0;
};

// Kernel checks: "embedding", "rmsnorm", "rope", "attention", "swiglu", "router", "cross_entropy";
// "gemm" compares the float GEMM with a double reference (not a gradient check).
std::vector<GradCheckResult> gradcheck_op(const std::string& op, uint64_t seed);

// Whole-model check: random weights (normal(0, initializer_range), norm weights around 1), random
// tokens and labels (a few −100); FD of the mean loss w.r.t. up to `max_coords` sampled
// coordinates of every trainable expert tensor (all of them when max_coords <= 0).
std::vector<GradCheckResult> gradcheck_model(const ModelConfig& c, AllowedExperts allowed, int64_t batch, int64_t seq,
                                             uint64_t seed, int64_t max_coords, bool recompute);

}  // namespace connito
