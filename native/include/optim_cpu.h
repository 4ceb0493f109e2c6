// The optimizer sweeps of the CPU backend (adamw.cc): vectorised loops over one contiguous range,
// called by the engine on chunks in parallel. Math in hd_math.h (adamw_update) and engine.cc.
#pragma once

#include <cstdint>

#include "hd_math.h"

namespace connito {

struct GradStats {
  double sumsq = 0, sum = 0;
  int64_t non_finite = 0;
};

// Statistics of g·inv over [0, n): Σx², Σx, and how many x are not finite (x − x ≠ 0).
GradStats grad_stats_f32(const float* g, int64_t n, float inv);

// p, m, v ← AdamW(p, m, v, g·gscale) (torch semantics, hd_math.h), then g ← 0. Returns Σ p (after).
double adamw_step_f32(float* p, float* g, float* m, float* v, int64_t n, float gscale, const AdamWCoeffs& c);

}  // namespace connito
