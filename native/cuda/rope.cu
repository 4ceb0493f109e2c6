// Interleaved RoPE on pairs (2i, 2i+1) of a d-wide slice at offset `off` of every head (rope.cc):
//   forward (a, b) -> (a·c − b·s, a·s + b·c);  backward applies the transpose.
// One thread per (token, head, pair).
#include "cuda_check.cuh"
#include "cuda_kernels.h"

namespace connito {
namespace cuda {
namespace {

template <bool kBackward>
__global__ void rope_kernel(float* x, int64_t N, int64_t seq, int64_t heads, int64_t ld, int64_t hs, int64_t off,
                            int64_t half, const float* cos_t, const float* sin_t) {
  const int64_t total = N * heads * half;
  for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < total;
       idx += (int64_t)gridDim.x * blockDim.x) {
    const int64_t i = idx % half, h = (idx / half) % heads, n = idx / (half * heads);
    const int64_t t = n % seq;
    const float c = cos_t[t * half + i], s = sin_t[t * half + i];
    float* p = x + n * ld + h * hs + off + 2 * i;
    const float a = p[0], b = p[1];
    if (kBackward) {
      p[0] = a * c + b * s;
      p[1] = -a * s + b * c;
    } else {
      p[0] = a * c - b * s;
      p[1] = a * s + b * c;
    }
  }
}

template <bool kBackward>
std::string launch_rope(float* x, int64_t N, int64_t seq, int64_t heads, int64_t ld, int64_t hs, int64_t off,
                        int64_t d, const float* cos_t, const float* sin_t, void* stream) {
  const int64_t total = N * heads * (d / 2);
  if (total <= 0) return "";
  rope_kernel<kBackward><<<blocks_for(total, 256), 256, 0, as_stream(stream)>>>(x, N, seq, heads, ld, hs, off, d / 2,
                                                                                cos_t, sin_t);
  CNM_CUDA_LAUNCHED();
  return "";
}

}  // namespace

std::string rope_forward(float* x, int64_t N, int64_t seq, int64_t heads, int64_t ld, int64_t hs, int64_t off,
                         int64_t d, const float* cos_t, const float* sin_t, void* stream) {
  return launch_rope<false>(x, N, seq, heads, ld, hs, off, d, cos_t, sin_t, stream);
}

std::string rope_backward(float* dx, int64_t N, int64_t seq, int64_t heads, int64_t ld, int64_t hs, int64_t off,
                          int64_t d, const float* cos_t, const float* sin_t, void* stream) {
  return launch_rope<true>(dx, N, seq, heads, ld, hs, off, d, cos_t, sin_t, stream);
}

}  // namespace cuda
}  // namespace connito
