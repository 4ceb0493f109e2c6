// SwiGLU of the gated MLPs (swiglu.cc): rows are [gate (W) | up (W)].
//   forward:  a = silu(gate) ⊙ up
//   backward: dgate = da ⊙ up ⊙ silu'(gate), dup = da ⊙ silu(gate)
#include "cuda_check.cuh"
#include "cuda_kernels.h"
#include "hd_math.h"

namespace connito {
namespace cuda {
namespace {

__global__ void swiglu_forward_kernel(const float* gu, float* a, int64_t N, int64_t W) {
  for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < N * W;
       idx += (int64_t)gridDim.x * blockDim.x) {
    const int64_t n = idx / W, i = idx % W;
    const float g = gu[n * 2 * W + i], u = gu[n * 2 * W + W + i];
    a[idx] = silu(g) * u;
  }
}

__global__ void swiglu_backward_kernel(const float* da, const float* gu, float* dgu, int64_t N, int64_t W) {
  for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < N * W;
       idx += (int64_t)gridDim.x * blockDim.x) {
    const int64_t n = idx / W, i = idx % W;
    const float g = gu[n * 2 * W + i], u = gu[n * 2 * W + W + i];
    dgu[n * 2 * W + i] = da[idx] * u * silu_grad(g);
    dgu[n * 2 * W + W + i] = da[idx] * silu(g);
  }
}

}  // namespace

std::string swiglu_forward(const float* gu, float* a, int64_t N, int64_t W, void* stream) {
  if (N * W <= 0) return "";
  swiglu_forward_kernel<<<blocks_for(N * W, 256), 256, 0, as_stream(stream)>>>(gu, a, N, W);
  CNM_CUDA_LAUNCHED();
  return "";
}

std::string swiglu_backward(const float* da, const float* gu, float* dgu, int64_t N, int64_t W, void* stream) {
  if (N * W <= 0) return "";
  swiglu_backward_kernel<<<blocks_for(N * W, 256), 256, 0, as_stream(stream)>>>(da, gu, dgu, N, W);
  CNM_CUDA_LAUNCHED();
  return "";
}

}  // namespace cuda
}  // namespace connito
