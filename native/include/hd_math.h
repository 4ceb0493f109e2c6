// Scalar math shared by the CPU and CUDA backends: inline functions that compile for the host and,
// under nvcc, for the device. Everything here is exact-by-definition (no backend-specific tricks), so
// both backends compute the same function; the CPU backend is the reference the CUDA one is tested
// against.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define CNM_HD __host__ __device__ __forceinline__
#else
#define CNM_HD inline
#endif

namespace connito {

// ---------------------------------------------------------------- activations
// SiLU(x) = x·σ(x);  SiLU'(x) = σ(x)·(1 + x·(1 − σ(x))).
template <typename T>
CNM_HD T sigmoid(T x) {
  return T(1) / (T(1) + std::exp(-x));
}
template <typename T>
CNM_HD T silu(T x) {
  return x * sigmoid(x);
}
template <typename T>
CNM_HD T silu_grad(T x) {
  T s = sigmoid(x);
  return s * (T(1) + x * (T(1) - s));
}

// ---------------------------------------------------------------- 16-bit floats
// IEEE binary16 <-> binary32 with round-to-nearest-even, subnormals, ±inf and NaN, i.e. what
// torch's `.to(torch.float16)` does on the CPU. Bit manipulation only, so the result does not
// depend on the compiler's float16 support.
CNM_HD float half_bits_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t man = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (man == 0) {
      bits = sign;
    } else {  // subnormal: renormalise
      int e = -1;
      do {
        e++;
        man <<= 1;
      } while ((man & 0x400u) == 0);
      bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (man << 13);
  } else {
    bits = sign | ((exp + (127 - 15)) << 23) | (man << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

CNM_HD uint16_t float_to_half_bits(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t absx = x & 0x7fffffffu;
  if (absx >= 0x7f800000u) {  // inf or NaN (NaN stays NaN: keep a mantissa bit)
    return (uint16_t)(sign | 0x7c00u | (absx > 0x7f800000u ? 0x200u | ((absx >> 13) & 0x3ffu) : 0u));
  }
  if (absx >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);  // rounds to >= 65520 -> inf
  if (absx < 0x38800000u) {                                    // below the smallest normal half
    if (absx < 0x33000000u) return (uint16_t)sign;               // < 2^-25 rounds to zero
    uint32_t e = absx >> 23;
    uint32_t man = (absx & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126 - e;  // 14..24 bits dropped for the subnormal encoding
    uint32_t half_man = man >> shift;
    uint32_t rem = man & ((1u << shift) - 1u);
    uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (half_man & 1u))) half_man++;
    return (uint16_t)(sign | half_man);
  }
  uint32_t r = absx + 0xfffu + ((absx >> 13) & 1u);  // round to nearest even at bit 13
  r -= (112u << 23);                                  // rebias 127 -> 15
  return (uint16_t)(sign | (r >> 13));
}

CNM_HD float bf16_bits_to_float(uint16_t b) {
  uint32_t bits = (uint32_t)b << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

CNM_HD uint16_t float_to_bf16_bits(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u);  // quiet NaN
  x += 0x7fffu + ((x >> 16) & 1u);                                             // nearest even
  return (uint16_t)(x >> 16);
}

// ---------------------------------------------------------------- learning-rate schedule
// transformers.get_cosine_schedule_with_warmup(num_cycles=0.5): `step` = number of scheduler.step()
// calls so far. Computed in double like the Python lambda. Note that past `total` the cosine rises
// again (the lambda does not clamp progress), exactly as in vectors/lr_schedule.json.
CNM_HD double lr_multiplier(int64_t step, int64_t warmup, int64_t total) {
  if (step < warmup) return (double)step / (double)(warmup > 1 ? warmup : 1);
  int64_t denom = total - warmup;
  double progress = (double)(step - warmup) / (double)(denom > 1 ? denom : 1);
  double m = 0.5 * (1.0 + std::cos(3.14159265358979323846 * 0.5 * 2.0 * progress));
  return m > 0.0 ? m : 0.0;
}

// ---------------------------------------------------------------- AdamW (torch semantics)
// One element of torch.optim.AdamW (single-tensor path): decoupled decay, then the moments, then
// the bias-corrected step. `decay` = 1 − lr·weight_decay, `step_size` = lr / (1 − β1^t),
// `bc2_sqrt` = sqrt(1 − β2^t); all three are computed once per step in double and rounded to float.
struct AdamWCoeffs {
  float decay, beta1, one_minus_beta1, beta2, one_minus_beta2, step_size, bc2_sqrt, eps;
};

CNM_HD void adamw_update(float& p, float& m, float& v, float g, const AdamWCoeffs& c) {
  p = p * c.decay;
  m = m * c.beta1 + g * c.one_minus_beta1;
  v = v * c.beta2 + (g * g) * c.one_minus_beta2;
  float denom = std::sqrt(v) / c.bc2_sqrt + c.eps;
  p = p - c.step_size * (m / denom);
}

}  // namespace connito
