// RMSNorm forward and input-gradient backward (math in cpu_ops.h / rmsnorm.cc): one block per row.
//   forward:  y = w ⊙ x · r,  r = (mean(x²) + eps)^−½
//   backward: dx = r·(w ⊙ dy) − x·r³·mean((w ⊙ dy) ⊙ x)   (written or accumulated)
#include "cuda_check.cuh"
#include "cuda_kernels.h"
#include "reduce.cuh"

namespace connito {
namespace cuda {
namespace {

__global__ void rmsnorm_forward_kernel(const float* x, const float* w, float* y, float* rstd, int64_t D, float eps,
                                       int64_t ldx, int64_t ldy) {
  const float* xr = x + blockIdx.x * ldx;
  float* yr = y + blockIdx.x * ldy;
  float ss = 0.0f;
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) ss += xr[i] * xr[i];
  ss = block_sum(ss);
  const float r = rsqrtf(ss / (float)D + eps);
  if (rstd && threadIdx.x == 0) rstd[blockIdx.x] = r;
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) yr[i] = w[i] * (xr[i] * r);
}

__global__ void rmsnorm_backward_kernel(const float* dy, const float* x, const float* w, const float* rstd, float* dx,
                                        int64_t D, bool accumulate, int64_t ldx, int64_t lddx) {
  const float* xr = x + blockIdx.x * ldx;
  const float* dyr = dy + blockIdx.x * D;
  float* dxr = dx + blockIdx.x * lddx;
  float dot = 0.0f;
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) dot += w[i] * dyr[i] * xr[i];
  dot = block_sum(dot);
  const float r = rstd[blockIdx.x];
  const float c = dot / (float)D * r * r * r;
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) {
    const float v = r * (w[i] * dyr[i]) - xr[i] * c;
    dxr[i] = accumulate ? dxr[i] + v : v;
  }
}

}  // namespace

std::string rmsnorm_forward(const float* x, const float* w, float* y, float* rstd, int64_t N, int64_t D, float eps,
                            int64_t ldx, int64_t ldy, void* stream) {
  if (N <= 0) return "";
  if (N > 2147483647) return "rmsnorm_forward: too many rows";
  rmsnorm_forward_kernel<<<(unsigned)N, 256, 0, as_stream(stream)>>>(x, w, y, rstd, D, eps, ldx < 0 ? D : ldx,
                                                                     ldy < 0 ? D : ldy);
  CNM_CUDA_LAUNCHED();
  return "";
}

std::string rmsnorm_backward(const float* dy, const float* x, const float* w, const float* rstd, float* dx, int64_t N,
                             int64_t D, bool accumulate, int64_t ldx, int64_t lddx, void* stream) {
  if (N <= 0) return "";
  if (N > 2147483647) return "rmsnorm_backward: too many rows";
  rmsnorm_backward_kernel<<<(unsigned)N, 256, 0, as_stream(stream)>>>(dy, x, w, rstd, dx, D, accumulate,
                                                                      ldx < 0 ? D : ldx, lddx < 0 ? D : lddx);
  CNM_CUDA_LAUNCHED();
  return "";
}

}  // namespace cuda
}  // namespace connito
