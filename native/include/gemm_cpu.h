// Dense matrix multiply for the CPU backend (row-major, explicit leading dimensions):
//   C[M×N] = alpha · op(A)[M×K] · op(B)[K×N] + beta · C
// op(A) = A (A[i·lda + k]) or Aᵀ (A[k·lda + i]); likewise op(B) = B (B[k·ldb + j]) or Bᵀ (B[j·ldb + k]).
// With beta == 0, C is written without being read (it may hold garbage or NaN).
//
// float: cache-blocked, packed, vectorised (AVX-512 / AVX2+FMA microkernel chosen at run time from
// CPUID, portable C++ otherwise) and multi-threaded with OpenMP. Called from inside an OpenMP
// parallel region it runs on the calling thread only.
// double: straightforward blocked loops; only the gradient checks use it.
#pragma once

#include <cstdint>
#include <string>

namespace connito {

void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, double alpha, const double* A, int64_t lda,
          const double* B, int64_t ldb, double beta, double* C, int64_t ldc);

// Which float kernel runs ("avx512", "avx2", "generic"); CONNITO_GEMM_KERNEL=avx2|generic forces a
// narrower one (benchmarks, tests of the fallback paths).
std::string gemm_kernel_name();

}  // namespace connito
