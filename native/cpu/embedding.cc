// Token embedding lookup: out[n, :] = table[tokens[n], :]. The table is frozen, so there is no
// backward. Token ids are range-checked by the caller before any work starts.
#include <cstring>

#include "cpu_ops.h"

namespace connito {

template <typename T>
void embedding_forward(const int32_t* tokens, const T* table, T* out, int64_t N, int64_t D) {
#pragma omp parallel for schedule(static) if (N > 64)
  for (int64_t n = 0; n < N; n++) std::memcpy(out + n * D, table + (int64_t)tokens[n] * D, sizeof(T) * D);
}

template <typename T>
void embedding_backward(const int32_t* tokens, const T* dout, T* dtable, int64_t N, int64_t D) {
  // Serial over tokens: repeated ids add into the same row.
  for (int64_t n = 0; n < N; n++) {
    T* row = dtable + (int64_t)tokens[n] * D;
    const T* d = dout + n * D;
    for (int64_t i = 0; i < D; i++) row[i] += d[i];
  }
}

template void embedding_backward<float>(const int32_t*, const float*, float*, int64_t, int64_t);
template void embedding_backward<double>(const int32_t*, const double*, double*, int64_t, int64_t);
template void embedding_forward<float>(const int32_t*, const float*, float*, int64_t, int64_t);
template void embedding_forward<double>(const int32_t*, const double*, double*, int64_t, int64_t);

}  // namespace connito
