// Vectorised float loops built on exp_approx (see vmath_cpu.h). Each function is compiled for
// several ISA levels (CNM_CLONES) and dispatched at load time.
#include <cmath>

#include "hd_math.h"
#include "vmath_cpu.h"

namespace connito {

CNM_CLONES double exp_shift_sum_inplace(float* z, int64_t n, float shift) {
  double total = 0.0;
  for (int64_t b = 0; b < n; b += 1024) {
    const int64_t e = b + 1024 < n ? b + 1024 : n;
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int64_t j = b; j < e; j++) {
      const float v = exp_approx(z[j] - shift);
      z[j] = v;
      s += v;
    }
    total += (double)s;
  }
  return total;
}

double exp_shift_sum(double* z, int64_t n, double shift) {
  double total = 0.0;
  for (int64_t j = 0; j < n; j++) {
    z[j] = std::exp(z[j] - shift);
    total += z[j];
  }
  return total;
}

CNM_CLONES void swiglu_forward_f32(const float* gu, float* a, int64_t N, int64_t W) {
  for (int64_t n = 0; n < N; n++) {
    const float* g = gu + n * 2 * W;
    const float* u = g + W;
    float* ar = a + n * W;
#pragma omp simd
    for (int64_t i = 0; i < W; i++) {
      const float s = 1.0f / (1.0f + exp_approx(-g[i]));
      ar[i] = g[i] * s * u[i];
    }
  }
}

CNM_CLONES void swiglu_backward_f32(const float* da, const float* gu, float* dgu, int64_t N, int64_t W) {
  for (int64_t n = 0; n < N; n++) {
    const float* g = gu + n * 2 * W;
    const float* u = g + W;
    const float* d = da + n * W;
    float* dg = dgu + n * 2 * W;
    float* du = dg + W;
#pragma omp simd
    for (int64_t i = 0; i < W; i++) {
      const float s = 1.0f / (1.0f + exp_approx(-g[i]));
      dg[i] = d[i] * u[i] * (s * (1.0f + g[i] * (1.0f - s)));
      du[i] = d[i] * (g[i] * s);
    }
  }
}

}  // namespace connito
