// Partial-MoE router (moe_router.cc), one thread per token:
//   forward:  probs = softmax(logits); greedy top-k over the allowed experts (ties → lower id);
//             weight = p·scaling (no renormalisation)
//   backward: dlogits = p ⊙ (dp − Σ p·dp), dp = scaling·dweight at the chosen experts
#include "cuda_check.cuh"
#include "cuda_kernels.h"

namespace connito {
namespace cuda {
namespace {

__global__ void router_forward_kernel(const float* logits, float* probs, int64_t N, int64_t E, int64_t K,
                                      const int32_t* allowed, int64_t A, double scaling, int32_t* expert,
                                      int32_t* local, float* weight) {
  const int64_t n = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (n >= N) return;
  const float* z = logits + n * E;
  float* p = probs + n * E;
  float mx = z[0];
  for (int64_t e = 1; e < E; e++) mx = fmaxf(mx, z[e]);
  double sum = 0.0;
  for (int64_t e = 0; e < E; e++) sum += exp((double)(z[e] - mx));
  for (int64_t e = 0; e < E; e++) p[e] = (float)(exp((double)(z[e] - mx)) / sum);
  // K ≤ A is checked on the host; the chosen set is kept as a bit mask over the allowed list.
  uint64_t taken[4] = {0, 0, 0, 0};  // up to 256 allowed experts
  for (int64_t k = 0; k < K; k++) {
    int64_t best = -1;
    for (int64_t a = 0; a < A; a++) {
      if (taken[a >> 6] >> (a & 63) & 1u) continue;
      if (best < 0 || p[allowed[a]] > p[allowed[best]]) best = a;
    }
    taken[best >> 6] |= (uint64_t)1 << (best & 63);
    expert[n * K + k] = allowed[best];
    local[n * K + k] = (int32_t)best;
    weight[n * K + k] = (float)((double)p[allowed[best]] * scaling);
  }
}

__global__ void router_backward_kernel(const float* probs, const int32_t* expert, const float* dweight, float* dlogits,
                                       int64_t N, int64_t E, int64_t K, double scaling) {
  const int64_t n = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (n >= N) return;
  const float* p = probs + n * E;
  float* dz = dlogits + n * E;
  double s = 0.0;
  for (int64_t k = 0; k < K; k++) s += (double)p[expert[n * K + k]] * scaling * (double)dweight[n * K + k];
  for (int64_t e = 0; e < E; e++) dz[e] = (float)(-(double)p[e] * s);
  for (int64_t k = 0; k < K; k++) {
    const int32_t e = expert[n * K + k];
    dz[e] += (float)((double)p[e] * scaling * (double)dweight[n * K + k]);
  }
}

}  // namespace

std::string router_forward(const float* logits, float* probs, int64_t N, int64_t E, int64_t K, const int32_t* allowed,
                           int64_t A, double scaling, int32_t* expert, int32_t* local, float* weight, void* stream) {
  if (N <= 0) return "";
  if (A > 256) return "router_forward: more than 256 allowed experts in one layer";
  if (K > A) return "router_forward: top-k exceeds the allowed experts";
  router_forward_kernel<<<blocks_for(N, 128), 128, 0, as_stream(stream)>>>(logits, probs, N, E, K, allowed, A, scaling,
                                                                          expert, local, weight);
  CNM_CUDA_LAUNCHED();
  return "";
}

std::string router_backward(const float* probs, const int32_t* expert, const float* dweight, float* dlogits, int64_t N,
                            int64_t E, int64_t K, double scaling, void* stream) {
  if (N <= 0) return "";
  router_backward_kernel<<<blocks_for(N, 128), 128, 0, as_stream(stream)>>>(probs, expert, dweight, dlogits, N, E, K,
                                                                           scaling);
  CNM_CUDA_LAUNCHED();
  return "";
}

}  // namespace cuda
}  // namespace connito
