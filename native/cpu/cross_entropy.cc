// Cross entropy of a block of next-token rows, with the gradient written over the logits:
//   loss_n = logsumexp(z_n) − z_n[y_n];   dz_n = (softmax(z_n) − onehot(y_n))·grad_scale
// grad_scale folds the 1/(number of valid labels) of the mean and the loss scale of fp16 runs.
// The logits are overwritten in every case (with exp values when no gradient is wanted).
#include <algorithm>
#include <cmath>

#include "cpu_ops.h"
#include "vmath_cpu.h"

namespace connito {

template <typename T>
double cross_entropy_block(T* logits, const int32_t* targets, int64_t n, int64_t V, T grad_scale) {
  double total = 0.0;
#pragma omp parallel for schedule(static) reduction(+ : total) if (n * V > 65536)
  for (int64_t r = 0; r < n; r++) {
    T* z = logits + r * V;
    T mx = z[0];
    for (int64_t j = 1; j < V; j++) mx = std::max(mx, z[j]);
    double sum = 0.0;
    for (int64_t j = 0; j < V; j++) sum += std::exp((double)(z[j] - mx));
    const double lse = (double)mx + std::log(sum);
    total += lse - (double)z[targets[r]];
    if (grad_scale != T(0)) {
      const double inv = 1.0 / sum;
      for (int64_t j = 0; j < V; j++) z[j] = (T)(std::exp((double)(z[j] - mx)) * inv) * grad_scale;
      z[targets[r]] -= grad_scale;
    }
  }
  return total;
}

// float: vectorised exp (vmath.cc); the row sums are still accumulated in double.
template <>
double cross_entropy_block<float>(float* logits, const int32_t* targets, int64_t n, int64_t V, float grad_scale) {
  double total = 0.0;
#pragma omp parallel for schedule(static) reduction(+ : total) if (n * V > 65536)
  for (int64_t r = 0; r < n; r++) {
    float* z = logits + r * V;
    float mx = z[0];
#pragma omp simd reduction(max : mx)
    for (int64_t j = 0; j < V; j++) mx = std::max(mx, z[j]);
    const float zt = z[targets[r]];
    const double sum = exp_shift_sum_inplace(z, V, mx);
    total += (double)mx + std::log(sum) - (double)zt;
    if (grad_scale != 0.0f) {
      const float f = (float)((double)grad_scale / sum);
#pragma omp simd
      for (int64_t j = 0; j < V; j++) z[j] *= f;
      z[targets[r]] -= grad_scale;
    }
  }
  return total;
}

template double cross_entropy_block<double>(double*, const int32_t*, int64_t, int64_t, double);

}  // namespace connito
