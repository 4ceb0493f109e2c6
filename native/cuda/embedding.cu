// Token embedding lookup (embedding.cc): out[n, :] = table[tokens[n], :]. Ids are checked on the host.
#include "cuda_check.cuh"
#include "cuda_kernels.h"

namespace connito {
namespace cuda {
namespace {

__global__ void embedding_forward_kernel(const int32_t* tokens, const float* table, float* out, int64_t N, int64_t D) {
  for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < N * D;
       idx += (int64_t)gridDim.x * blockDim.x) {
    const int64_t n = idx / D, i = idx % D;
    out[idx] = table[(int64_t)tokens[n] * D + i];
  }
}

}  // namespace

std::string embedding_forward(const int32_t* tokens, const float* table, float* out, int64_t N, int64_t D,
                              void* stream) {
  if (N * D <= 0) return "";
  embedding_forward_kernel<<<blocks_for(N * D, 256), 256, 0, as_stream(stream)>>>(tokens, table, out, N, D);
  CNM_CUDA_LAUNCHED();
  return "";
}

}  // namespace cuda
}  // namespace connito
