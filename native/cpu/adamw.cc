// Optimizer sweeps (see optim_cpu.h): unscaled gradient statistics, and the fused
// unscale·clip + AdamW + clear-the-accumulator pass. Both are memory-bound; they are compiled for
// several ISA levels (CNM_CLONES) so the sqrt/div of AdamW vectorise, with float partial sums per
// 4096-element block accumulated in double.
#include <cmath>

#include "optim_cpu.h"
#include "vmath_cpu.h"

namespace connito {

CNM_CLONES GradStats grad_stats_f32(const float* g, int64_t n, float inv) {
  GradStats st;
  for (int64_t b = 0; b < n; b += 4096) {
    const int64_t e = b + 4096 < n ? b + 4096 : n;
    float sq = 0.0f, s = 0.0f;
    int bad = 0;
#pragma omp simd reduction(+ : sq, s, bad)
    for (int64_t i = b; i < e; i++) {
      const float x = g[i] * inv;
      const float z = x - x;  // 0 for finite x, NaN for inf and NaN
      bad += z == 0.0f ? 0 : 1;
      sq += x * x;
      s += x;
    }
    st.sumsq += (double)sq;
    st.sum += (double)s;
    st.non_finite += bad;
  }
  return st;
}

CNM_CLONES double adamw_step_f32(float* p, float* g, float* m, float* v, int64_t n, float gscale,
                                 const AdamWCoeffs& cref) {
  const AdamWCoeffs c = cref;
  double total = 0.0;
  for (int64_t b = 0; b < n; b += 4096) {
    const int64_t e = b + 4096 < n ? b + 4096 : n;
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int64_t i = b; i < e; i++) {
      float pi = p[i], mi = m[i], vi = v[i];
      adamw_update(pi, mi, vi, g[i] * gscale, c);
      p[i] = pi;
      m[i] = mi;
      v[i] = vi;
      g[i] = 0.0f;
      s += pi;
    }
    total += (double)s;
  }
  return total;
}

}  // namespace connito
