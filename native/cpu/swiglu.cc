// SwiGLU activation of the gated MLPs (dense MLP, shared experts, routed experts). The input is the
// output of one GEMM against the stacked [gate; up] weight: row n = [gate (W) | up (W)].
//   forward:  a = silu(gate) ⊙ up
//   backward: dgate = da ⊙ up ⊙ silu'(gate),  dup = da ⊙ silu(gate)
#include "cpu_ops.h"
#include "hd_math.h"
#include "vmath_cpu.h"

namespace connito {

template <typename T>
void swiglu_forward(const T* gu, T* a, int64_t N, int64_t W) {
#pragma omp parallel for schedule(static) if (N * W > 65536)
  for (int64_t n = 0; n < N; n++) {
    const T* g = gu + n * 2 * W;
    const T* u = g + W;
    T* ar = a + n * W;
    for (int64_t i = 0; i < W; i++) ar[i] = silu(g[i]) * u[i];
  }
}

template <typename T>
void swiglu_backward(const T* da, const T* gu, T* dgu, int64_t N, int64_t W) {
#pragma omp parallel for schedule(static) if (N * W > 65536)
  for (int64_t n = 0; n < N; n++) {
    const T* g = gu + n * 2 * W;
    const T* u = g + W;
    const T* d = da + n * W;
    T* dg = dgu + n * 2 * W;
    T* du = dg + W;
    for (int64_t i = 0; i < W; i++) {
      const T s = sigmoid(g[i]);
      const T sl = g[i] * s;
      dg[i] = d[i] * u[i] * (s * (T(1) + g[i] * (T(1) - s)));
      du[i] = d[i] * sl;
    }
  }
}

// float: the vectorised loops of vmath.cc, row blocks in parallel.
template <>
void swiglu_forward<float>(const float* gu, float* a, int64_t N, int64_t W) {
  const int64_t blk = 16;
#pragma omp parallel for schedule(static) if (N * W > 65536)
  for (int64_t n = 0; n < N; n += blk) swiglu_forward_f32(gu + n * 2 * W, a + n * W, n + blk < N ? blk : N - n, W);
}
template <>
void swiglu_backward<float>(const float* da, const float* gu, float* dgu, int64_t N, int64_t W) {
  const int64_t blk = 16;
#pragma omp parallel for schedule(static) if (N * W > 65536)
  for (int64_t n = 0; n < N; n += blk)
    swiglu_backward_f32(da + n * W, gu + n * 2 * W, dgu + n * 2 * W, n + blk < N ? blk : N - n, W);
}

template void swiglu_forward<double>(const double*, double*, int64_t, int64_t);
template void swiglu_backward<double>(const double*, const double*, double*, int64_t, int64_t);

}  // namespace connito
