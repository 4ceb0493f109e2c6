// Optimizer sweeps (engine.cc optimizer_step):
//   grad_stats: out[0] += Σ (g·inv)², out[1] += Σ g·inv, out[2] += count of non-finite g·inv
//   adamw_step: g' = g·gscale (unscale × clip); torch AdamW update (hd_math.h adamw_update); g = 0
#include "cuda_check.cuh"
#include "cuda_kernels.h"
#include "hd_math.h"
#include "reduce.cuh"

namespace connito {
namespace cuda {
namespace {

__global__ void grad_stats_kernel(const float* g, int64_t n, float inv, double* out) {
  double sq = 0.0, s = 0.0, bad = 0.0;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const float x = g[i] * inv;
    if (!isfinite(x)) bad += 1.0;
    sq += (double)x * (double)x;
    s += (double)x;
  }
  sq = block_sum(sq);
  s = block_sum(s);
  bad = block_sum(bad);
  if (threadIdx.x == 0) {
    atomicAdd(out + 0, sq);
    atomicAdd(out + 1, s);
    atomicAdd(out + 2, bad);
  }
}

__global__ void adamw_kernel(float* p, float* g, float* m, float* v, int64_t n, float gscale, AdamWCoeffs c) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    float pi = p[i], mi = m[i], vi = v[i];
    adamw_update(pi, mi, vi, g[i] * gscale, c);
    p[i] = pi;
    m[i] = mi;
    v[i] = vi;
    g[i] = 0.0f;
  }
}

}  // namespace

std::string grad_stats(const float* g, int64_t n, float inv, double* out3, void* stream) {
  if (n <= 0) return "";
  const unsigned blocks = blocks_for(n, 256) < 1024 ? blocks_for(n, 256) : 1024;
  grad_stats_kernel<<<blocks, 256, 0, as_stream(stream)>>>(g, n, inv, out3);
  CNM_CUDA_LAUNCHED();
  return "";
}

std::string adamw_step(float* p, float* g, float* m, float* v, int64_t n, float gscale, float decay, float beta1,
                       float beta2, float step_size, float bc2_sqrt, float eps, void* stream) {
  if (n <= 0) return "";
  AdamWCoeffs c{decay, beta1, 1.0f - beta1, beta2, 1.0f - beta2, step_size, bc2_sqrt, eps};
  adamw_kernel<<<blocks_for(n, 256), 256, 0, as_stream(stream)>>>(p, g, m, v, n, gscale, c);
  CNM_CUDA_LAUNCHED();
  return "";
}

}  // namespace cuda
}  // namespace connito
