// Interleaved RoPE with YaRN frequencies and attention factor (see model_config.h for how the
// frequencies are derived, cpu_ops.h for the buffer layout).
//   forward:  (a, b) -> (a·c − b·s, a·s + b·c)      c = af·cos θ, s = af·sin θ
//   backward: (da, db) <- (dA·c + dB·s, −dA·s + dB·c)   (the transpose of the forward map)
#include <cmath>

#include "cpu_ops.h"

namespace connito {

template <typename T>
void rope_tables(const std::vector<double>& inv_freq, double attention_factor, int64_t seq, std::vector<T>& cos_t,
                 std::vector<T>& sin_t) {
  const int64_t half = (int64_t)inv_freq.size();
  cos_t.assign((size_t)(seq * half), T(0));
  sin_t.assign((size_t)(seq * half), T(0));
  for (int64_t t = 0; t < seq; t++) {
    for (int64_t i = 0; i < half; i++) {
      double angle;
      if (sizeof(T) == sizeof(float)) {
        // transformers: inv_freq (float32) @ position (float32) in float32, then polar() in float32.
        angle = (double)((float)inv_freq[i] * (float)t);
      } else {
        angle = inv_freq[i] * (double)t;
      }
      T c = (T)std::cos(angle), s = (T)std::sin(angle);
      cos_t[t * half + i] = c * (T)attention_factor;
      sin_t[t * half + i] = s * (T)attention_factor;
    }
  }
}

namespace {

// kBackward rotates by −θ, the transpose of the forward rotation.
template <bool kBackward, typename T>
void rope_rotate(T* x, int64_t N, int64_t seq, int64_t heads, int64_t ld, int64_t hs, int64_t off, int64_t d,
                 const T* cos_t, const T* sin_t) {
  const int64_t half = d / 2;
#pragma omp parallel for schedule(static) if (N > 16)
  for (int64_t n = 0; n < N; n++) {
    const int64_t t = n % seq;
    const T* c = cos_t + t * half;
    const T* s = sin_t + t * half;
    for (int64_t h = 0; h < heads; h++) {
      T* p = x + n * ld + h * hs + off;
      for (int64_t i = 0; i < half; i++) {
        T a = p[2 * i], b = p[2 * i + 1];
        if (kBackward) {
          p[2 * i] = a * c[i] + b * s[i];
          p[2 * i + 1] = -a * s[i] + b * c[i];
        } else {
          p[2 * i] = a * c[i] - b * s[i];
          p[2 * i + 1] = a * s[i] + b * c[i];
        }
      }
    }
  }
}

}  // namespace

template <typename T>
void rope_forward(T* x, int64_t N, int64_t seq, int64_t heads, int64_t ld, int64_t hs, int64_t off, int64_t d,
                  const T* cos_t, const T* sin_t) {
  rope_rotate<false>(x, N, seq, heads, ld, hs, off, d, cos_t, sin_t);
}

template <typename T>
void rope_backward(T* dx, int64_t N, int64_t seq, int64_t heads, int64_t ld, int64_t hs, int64_t off, int64_t d,
                   const T* cos_t, const T* sin_t) {
  rope_rotate<true>(dx, N, seq, heads, ld, hs, off, d, cos_t, sin_t);
}

template void rope_tables<float>(const std::vector<double>&, double, int64_t, std::vector<float>&,
                                 std::vector<float>&);
template void rope_tables<double>(const std::vector<double>&, double, int64_t, std::vector<double>&,
                                  std::vector<double>&);
template void rope_forward<float>(float*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, const float*,
                                  const float*);
template void rope_forward<double>(double*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                                   const double*, const double*);
template void rope_backward<float>(float*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                                   const float*, const float*);
template void rope_backward<double>(double*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                                    const double*, const double*);

}  // namespace connito
