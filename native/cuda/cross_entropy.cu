// Cross entropy of a block of next-token rows (cross_entropy.cc), one block per row:
//   loss_n = logsumexp(z_n) − z_n[y_n];   z_n ← (softmax(z_n) − onehot(y_n))·grad_scale when grad_scale ≠ 0
#include "cuda_check.cuh"
#include "cuda_kernels.h"
#include "reduce.cuh"

namespace connito {
namespace cuda {
namespace {

__global__ void cross_entropy_kernel(float* logits, const int32_t* targets, float* row_loss, int64_t V,
                                     float grad_scale) {
  float* z = logits + blockIdx.x * V;
  const int32_t y = targets[blockIdx.x];
  float mx = -INFINITY;
  for (int64_t j = threadIdx.x; j < V; j += blockDim.x) mx = fmaxf(mx, z[j]);
  mx = block_max(mx);
  float sum = 0.0f;
  for (int64_t j = threadIdx.x; j < V; j += blockDim.x) sum += __expf(z[j] - mx);
  sum = block_sum(sum);
  const float zy = z[y];
  __syncthreads();  // every thread has read z[y] before it is overwritten
  if (threadIdx.x == 0) row_loss[blockIdx.x] = logf(sum) + mx - zy;
  if (grad_scale != 0.0f) {
    const float f = grad_scale / sum;
    for (int64_t j = threadIdx.x; j < V; j += blockDim.x) z[j] = __expf(z[j] - mx) * f - (j == y ? grad_scale : 0.0f);
  }
}

}  // namespace

std::string cross_entropy_block(float* logits, const int32_t* targets, float* row_loss, int64_t n, int64_t V,
                                float grad_scale, void* stream) {
  if (n <= 0) return "";
  if (n > 2147483647) return "cross_entropy_block: too many rows";
  cross_entropy_kernel<<<(unsigned)n, 512, 0, as_stream(stream)>>>(logits, targets, row_loss, V, grad_scale);
  CNM_CUDA_LAUNCHED();
  return "";
}

}  // namespace cuda
}  // namespace connito
