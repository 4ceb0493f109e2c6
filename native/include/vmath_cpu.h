// Vectorisable float math for the CPU hot loops (softmax, cross entropy, SiLU). `exp_approx` is a
// branch-free Cephes-style expf (Cody–Waite range reduction + degree-6 polynomial, ≤ 2 ulp on
// [−87, 88]; 0 below −87) written so that the compiler vectorises the loops that call it.
// CNM_CLONES compiles a loop function for baseline x86-64, x86-64-v3 (AVX2+FMA) and x86-64-v4
// (AVX-512) and picks one at load time (GCC/Clang ifunc), so no -march flag is needed.
#pragma once

#include <cstdint>
#include <cstring>

#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__) && !defined(__CUDACC__) && defined(__linux__)
#define CNM_CLONES __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#else
#define CNM_CLONES
#endif

#if defined(__GNUC__)
#define CNM_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define CNM_ALWAYS_INLINE inline
#endif

namespace connito {

CNM_ALWAYS_INLINE float exp_approx(float x) {
  const float xc = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  const float t = xc * 1.44269504088896341f;
  const float n = (t + 12582912.0f) - 12582912.0f;  // round to nearest integer (|t| < 2^22)
  const float r = (xc - n * 0.693359375f) - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t e = ((int32_t)n + 127) << 23;
#if defined(__GNUC__)
  const float s = __builtin_bit_cast(float, e);
#else
  float s;
  std::memcpy(&s, &e, 4);
#endif
  return x < -87.0f ? 0.0f : p * s;
}

// z[i] = exp(z[i] − shift) in place; returns Σ z (float lanes per 1024-element block, summed in double).
double exp_shift_sum_inplace(float* z, int64_t n, float shift);
// Overloads used by templated kernels: float -> vectorised, double -> libm.
inline double exp_shift_sum(float* z, int64_t n, float shift) { return exp_shift_sum_inplace(z, n, shift); }
double exp_shift_sum(double* z, int64_t n, double shift);
// a = silu(gate) ⊙ up for one row block (see swiglu.cc).
void swiglu_forward_f32(const float* gu, float* a, int64_t N, int64_t W);
void swiglu_backward_f32(const float* da, const float* gu, float* dgu, int64_t N, int64_t W);

}  // namespace connito
