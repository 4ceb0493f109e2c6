// RMSNorm forward and input-gradient backward (see cpu_ops.h for the math). One row per token,
// rows in parallel; the row reductions run in double so float results do not depend on the thread
// count or on the row width.
#include <cmath>

#include "cpu_ops.h"

namespace connito {

template <typename T>
void rmsnorm_forward(const T* x, const T* w, T* y, T* rstd, int64_t N, int64_t D, double eps, int64_t ldx,
                     int64_t ldy) {
  if (ldx < 0) ldx = D;
  if (ldy < 0) ldy = D;
#pragma omp parallel for schedule(static) if (N > 16)
  for (int64_t n = 0; n < N; n++) {
    const T* xr = x + n * ldx;
    T* yr = y + n * ldy;
    double ss = 0.0;
    for (int64_t i = 0; i < D; i++) ss += (double)xr[i] * (double)xr[i];
    T r = (T)(1.0 / std::sqrt(ss / (double)D + eps));
    if (rstd) rstd[n] = r;
    for (int64_t i = 0; i < D; i++) yr[i] = w[i] * (xr[i] * r);
  }
}

template <typename T>
void rmsnorm_backward(const T* dy, const T* x, const T* w, const T* rstd, T* dx, int64_t N, int64_t D,
                      bool accumulate, int64_t ldx, int64_t lddx) {
  if (ldx < 0) ldx = D;
  if (lddx < 0) lddx = D;
#pragma omp parallel for schedule(static) if (N > 16)
  for (int64_t n = 0; n < N; n++) {
    const T* xr = x + n * ldx;
    const T* dyr = dy + n * D;
    T* dxr = dx + n * lddx;
    double dot = 0.0;
    for (int64_t i = 0; i < D; i++) dot += (double)(w[i] * dyr[i]) * (double)xr[i];
    const T r = rstd[n];
    const T c = (T)(dot / (double)D * (double)r * (double)r * (double)r);
    if (accumulate) {
      for (int64_t i = 0; i < D; i++) dxr[i] += r * (w[i] * dyr[i]) - xr[i] * c;
    } else {
      for (int64_t i = 0; i < D; i++) dxr[i] = r * (w[i] * dyr[i]) - xr[i] * c;
    }
  }
}

template void rmsnorm_forward<float>(const float*, const float*, float*, float*, int64_t, int64_t, double, int64_t,
                                     int64_t);
template void rmsnorm_forward<double>(const double*, const double*, double*, double*, int64_t, int64_t, double,
                                      int64_t, int64_t);
template void rmsnorm_backward<float>(const float*, const float*, const float*, const float*, float*, int64_t,
                                      int64_t, bool, int64_t, int64_t);
template void rmsnorm_backward<double>(const double*, const double*, const double*, const double*, double*, int64_t,
                                       int64_t, bool, int64_t, int64_t);

}  // namespace connito
