// gemm: C = alpha·op(A)·op(B) + beta·C, row-major (see gemm_cpu.h).
//
// float path, BLIS-style (Goto) blocking:
//   for jc in N step NC:                 B block (KC×NC) packed once per (jc, pc), shared by threads
//     for pc in K step KC:               A slice (M×KC) packed once per (jc, pc), shared by threads
//       each thread owns a rectangle of micro-tiles; inside it:
//         for ic in its rows step MC:    A block (MC×KC) stays in L2
//           for jr in its cols step NR:  B micro-panel (KC×NR) stays in L1
//             for ir in block step MR:   microkernel: MR×NR accumulators in registers
// Packed layouts: A micro-panel = [k][MR] (MR rows interleaved per k), B micro-panel = [k][NR];
// ragged edges are zero-padded so the microkernel always runs full tiles and only the store is
// masked. The microkernel is picked once from CPUID (AVX-512F, AVX2+FMA, portable C++): every ISA
// variant is compiled with a function-level target attribute, so the build needs no -march flag and
// the binary runs on any x86-64 (and, through the portable kernel, on any other CPU).
#include "gemm_cpu.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__x86_64__) || defined(_M_X64)
#define CNM_X86 1
#include <immintrin.h>
#endif

namespace connito {
namespace {

using KernelFn = void (*)(int64_t kc, const float* A, const float* B, float* C, int64_t ldc, float alpha, float beta,
                          int mr, int nr);

struct GemmKernel {
  const char* name;
  int MR, NR;        // micro-tile
  int64_t KC, MC, NC;  // cache blocks (MC multiple of MR, NC multiple of NR)
  KernelFn fn;
};

// Store an MR×NR accumulator tile held in `acc` (row-major, NR per row) into C with masking.
inline void store_tile(const float* acc, int NR, float* C, int64_t ldc, float alpha, float beta, int mr, int nr) {
  for (int r = 0; r < mr; r++) {
    float* c = C + r * ldc;
    const float* a = acc + r * NR;
    if (beta == 0.0f) {
      for (int j = 0; j < nr; j++) c[j] = alpha * a[j];
    } else {
      for (int j = 0; j < nr; j++) c[j] = alpha * a[j] + beta * c[j];
    }
  }
}

// ---------------------------------------------------------------- portable kernel (4×16)
void kernel_generic(int64_t kc, const float* A, const float* B, float* C, int64_t ldc, float alpha, float beta, int mr,
                    int nr) {
  constexpr int MR = 4, NR = 16;
  float acc[MR * NR] = {0};
  for (int64_t k = 0; k < kc; k++) {
    for (int r = 0; r < MR; r++) {
      float a = A[k * MR + r];
      for (int j = 0; j < NR; j++) acc[r * NR + j] += a * B[k * NR + j];
    }
  }
  store_tile(acc, NR, C, ldc, alpha, beta, mr, nr);
}

#ifdef CNM_X86
// ---------------------------------------------------------------- AVX2 + FMA kernel (6×16)
__attribute__((target("avx2,fma"))) void kernel_avx2(int64_t kc, const float* A, const float* B, float* C,
                                                      int64_t ldc, float alpha, float beta, int mr, int nr) {
  constexpr int MR = 6, NR = 16;
  __m256 c0[MR], c1[MR];
  for (int r = 0; r < MR; r++) c0[r] = c1[r] = _mm256_setzero_ps();
  for (int64_t k = 0; k < kc; k++) {
    __m256 b0 = _mm256_load_ps(B), b1 = _mm256_load_ps(B + 8);
    _mm_prefetch((const char*)(B + 8 * NR), _MM_HINT_T0);
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++) {
      __m256 a = _mm256_broadcast_ss(A + r);
      c0[r] = _mm256_fmadd_ps(a, b0, c0[r]);
      c1[r] = _mm256_fmadd_ps(a, b1, c1[r]);
    }
    A += MR;
    B += NR;
  }
  __m256 va = _mm256_set1_ps(alpha);
  if (mr == MR && nr == NR) {
    if (beta == 0.0f) {
      for (int r = 0; r < MR; r++) {
        _mm256_storeu_ps(C + r * ldc, _mm256_mul_ps(va, c0[r]));
        _mm256_storeu_ps(C + r * ldc + 8, _mm256_mul_ps(va, c1[r]));
      }
    } else {
      __m256 vb = _mm256_set1_ps(beta);
      for (int r = 0; r < MR; r++) {
        float* c = C + r * ldc;
        _mm256_storeu_ps(c, _mm256_fmadd_ps(va, c0[r], _mm256_mul_ps(vb, _mm256_loadu_ps(c))));
        _mm256_storeu_ps(c + 8, _mm256_fmadd_ps(va, c1[r], _mm256_mul_ps(vb, _mm256_loadu_ps(c + 8))));
      }
    }
    return;
  }
  alignas(64) float acc[MR * NR];
  for (int r = 0; r < MR; r++) {
    _mm256_store_ps(acc + r * NR, c0[r]);
    _mm256_store_ps(acc + r * NR + 8, c1[r]);
  }
  store_tile(acc, NR, C, ldc, alpha, beta, mr, nr);
}

// ---------------------------------------------------------------- AVX-512 kernel (12×32)
__attribute__((target("avx512f"))) void kernel_avx512(int64_t kc, const float* A, const float* B, float* C,
                                                       int64_t ldc, float alpha, float beta, int mr, int nr) {
  constexpr int MR = 12, NR = 32;
  __m512 c0[MR], c1[MR];
  for (int r = 0; r < MR; r++) c0[r] = c1[r] = _mm512_setzero_ps();
  for (int64_t k = 0; k < kc; k++) {
    __m512 b0 = _mm512_load_ps(B), b1 = _mm512_load_ps(B + 16);
    _mm_prefetch((const char*)(B + 4 * NR), _MM_HINT_T0);
#pragma GCC unroll 12
    for (int r = 0; r < MR; r++) {
      __m512 a = _mm512_set1_ps(A[r]);
      c0[r] = _mm512_fmadd_ps(a, b0, c0[r]);
      c1[r] = _mm512_fmadd_ps(a, b1, c1[r]);
    }
    A += MR;
    B += NR;
  }
  __m512 va = _mm512_set1_ps(alpha);
  if (mr == MR && nr == NR) {
    if (beta == 0.0f) {
      for (int r = 0; r < MR; r++) {
        _mm512_storeu_ps(C + r * ldc, _mm512_mul_ps(va, c0[r]));
        _mm512_storeu_ps(C + r * ldc + 16, _mm512_mul_ps(va, c1[r]));
      }
    } else {
      __m512 vb = _mm512_set1_ps(beta);
      for (int r = 0; r < MR; r++) {
        float* c = C + r * ldc;
        _mm512_storeu_ps(c, _mm512_fmadd_ps(va, c0[r], _mm512_mul_ps(vb, _mm512_loadu_ps(c))));
        _mm512_storeu_ps(c + 16, _mm512_fmadd_ps(va, c1[r], _mm512_mul_ps(vb, _mm512_loadu_ps(c + 16))));
      }
    }
    return;
  }
  alignas(64) float acc[MR * NR];
  for (int r = 0; r < MR; r++) {
    _mm512_store_ps(acc + r * NR, c0[r]);
    _mm512_store_ps(acc + r * NR + 16, c1[r]);
  }
  store_tile(acc, NR, C, ldc, alpha, beta, mr, nr);
}
#endif

const GemmKernel kGeneric{"generic", 4, 16, 256, 64, 2048, kernel_generic};
#ifdef CNM_X86
const GemmKernel kAvx2{"avx2", 6, 16, 256, 120, 3072, kernel_avx2};
const GemmKernel kAvx512{"avx512", 12, 32, 256, 144, 4096, kernel_avx512};
#endif

const GemmKernel& select_kernel() {
  static const GemmKernel* chosen = [] {
    const char* force = std::getenv("CONNITO_GEMM_KERNEL");
    std::string f = force ? force : "";
#ifdef CNM_X86
    __builtin_cpu_init();
    bool has512 = __builtin_cpu_supports("avx512f");
    bool has2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (f == "generic") return &kGeneric;
    if (f == "avx2") return has2 ? &kAvx2 : &kGeneric;
    if (has512) return &kAvx512;
    if (has2) return &kAvx2;
#endif
    return &kGeneric;
  }();
  return *chosen;
}

// Aligned scratch that only grows; one per calling thread (gemm may run concurrently on several
// OpenMP threads, e.g. one attention head each).
struct Scratch {
  float* p = nullptr;
  size_t n = 0;
  ~Scratch() { std::free(p); }
  float* get(size_t want) {
    if (want > n) {
      std::free(p);
      size_t bytes = ((want * sizeof(float) + 63) / 64) * 64;
      p = static_cast<float*>(std::aligned_alloc(64, bytes));
      if (!p) throw std::bad_alloc();
      n = want;
    }
    return p;
  }
};

// Pack rows [i0, i0+m) × cols [p0, p0+kc) of op(A) into MR-row micro-panels, panels [pa, pb).
void pack_A(bool transA, const float* A, int64_t lda, int64_t i0, int64_t m, int64_t p0, int64_t kc, int MR,
            float* dst, int64_t pa, int64_t pb) {
  for (int64_t ip = pa; ip < pb; ip++) {
    float* d = dst + ip * kc * MR;
    int64_t r0 = ip * MR;
    int rows = (int)std::min<int64_t>(MR, m - r0);
    if (!transA) {
      for (int r = 0; r < rows; r++) {
        const float* src = A + (i0 + r0 + r) * lda + p0;
        for (int64_t k = 0; k < kc; k++) d[k * MR + r] = src[k];
      }
      for (int r = rows; r < MR; r++)
        for (int64_t k = 0; k < kc; k++) d[k * MR + r] = 0.0f;
    } else {
      for (int64_t k = 0; k < kc; k++) {
        const float* src = A + (p0 + k) * lda + i0 + r0;
        float* dk = d + k * MR;
        int r = 0;
        for (; r < rows; r++) dk[r] = src[r];
        for (; r < MR; r++) dk[r] = 0.0f;
      }
    }
  }
}

// Pack rows [p0, p0+kc) × cols [j0, j0+n) of op(B) into NR-column micro-panels, panels [pa, pb).
void pack_B(bool transB, const float* B, int64_t ldb, int64_t p0, int64_t kc, int64_t j0, int64_t n, int NR,
            float* dst, int64_t pa, int64_t pb) {
  for (int64_t jp = pa; jp < pb; jp++) {
    float* d = dst + jp * kc * NR;
    int64_t c0 = jp * NR;
    int cols = (int)std::min<int64_t>(NR, n - c0);
    if (!transB) {
      for (int64_t k = 0; k < kc; k++) {
        const float* src = B + (p0 + k) * ldb + j0 + c0;
        float* dk = d + k * NR;
        if (cols == NR) {
          std::memcpy(dk, src, sizeof(float) * NR);
        } else {
          int c = 0;
          for (; c < cols; c++) dk[c] = src[c];
          for (; c < NR; c++) dk[c] = 0.0f;
        }
      }
    } else {
      for (int c = 0; c < cols; c++) {
        const float* src = B + (j0 + c0 + c) * ldb + p0;
        for (int64_t k = 0; k < kc; k++) d[k * NR + c] = src[k];
      }
      for (int c = cols; c < NR; c++)
        for (int64_t k = 0; k < kc; k++) d[k * NR + c] = 0.0f;
    }
  }
}

void scale_c(int64_t M, int64_t N, float beta, float* C, int64_t ldc) {
  for (int64_t i = 0; i < M; i++) {
    float* c = C + i * ldc;
    if (beta == 0.0f) {
      std::memset(c, 0, sizeof(float) * N);
    } else if (beta != 1.0f) {
      for (int64_t j = 0; j < N; j++) c[j] *= beta;
    }
  }
}

inline void range_split(int64_t n, int parts, int idx, int64_t& a, int64_t& b) {
  int64_t q = n / parts, r = n % parts;
  a = idx * q + std::min<int64_t>(idx, r);
  b = a + q + (idx < r ? 1 : 0);
}

}  // namespace

std::string gemm_kernel_name() { return select_kernel().name; }

void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == 0.0f) {
    scale_c(M, N, beta, C, ldc);
    return;
  }
  const GemmKernel& kr = select_kernel();
  const int MR = kr.MR, NR = kr.NR;
  const int64_t KC = kr.KC, NC = kr.NC;
  const int64_t MC = kr.MC;

  int nth = 1;
#ifdef _OPENMP
  if (!omp_in_parallel()) {
    nth = omp_get_max_threads();
    // Threads only pay off when every one gets real work.
    double flops = 2.0 * (double)M * (double)N * (double)K;
    if (flops < 4e6) nth = 1;
    int64_t tiles = ((M + MR - 1) / MR) * ((std::min(N, NC) + NR - 1) / NR);
    if (tiles < 2 * nth) nth = std::max<int64_t>(1, tiles / 2);
  }
#endif

  const int64_t mpanels = (M + MR - 1) / MR;
  thread_local Scratch sa, sb;
  float* Ap = sa.get((size_t)(mpanels * MR) * KC);
  float* Bp = sb.get((size_t)(((NC + NR - 1) / NR) * NR) * KC);

  auto body = [&](int tid, int nthreads) {
    for (int64_t jc = 0; jc < N; jc += NC) {
      const int64_t nc = std::min(NC, N - jc);
      const int64_t npanels = (nc + NR - 1) / NR;
      // Split the micro-tile grid: rows when there are enough row panels, else columns.
      bool split_rows = mpanels >= 2 * nthreads || mpanels >= npanels;
      int64_t ra = 0, rb = mpanels, ca = 0, cb = npanels;
      if (split_rows) range_split(mpanels, nthreads, tid, ra, rb);
      else range_split(npanels, nthreads, tid, ca, cb);
      for (int64_t pc = 0; pc < K; pc += KC) {
        const int64_t kc = std::min(KC, K - pc);
        const float beta_eff = pc == 0 ? beta : 1.0f;
        {
          int64_t a, b;
          range_split(npanels, nthreads, tid, a, b);
          pack_B(transB, B, ldb, pc, kc, jc, nc, NR, Bp, a, b);
          range_split(mpanels, nthreads, tid, a, b);
          pack_A(transA, A, lda, 0, M, pc, kc, MR, Ap, a, b);
        }
#ifdef _OPENMP
        if (nthreads > 1) {
#pragma omp barrier
        }
#endif
        const int64_t mc_panels = MC / MR;
        for (int64_t ib = ra; ib < rb; ib += mc_panels) {
          const int64_t ie = std::min(rb, ib + mc_panels);
          for (int64_t jp = ca; jp < cb; jp++) {
            const float* bp = Bp + jp * kc * NR;
            const int64_t j = jc + jp * NR;
            const int nr = (int)std::min<int64_t>(NR, N - j);
            for (int64_t ip = ib; ip < ie; ip++) {
              const int64_t i = ip * MR;
              const int mr = (int)std::min<int64_t>(MR, M - i);
              kr.fn(kc, Ap + ip * kc * MR, bp, C + i * ldc + j, ldc, alpha, beta_eff, mr, nr);
            }
          }
        }
#ifdef _OPENMP
        if (nthreads > 1) {
#pragma omp barrier
        }
#endif
      }
    }
  };

#ifdef _OPENMP
  if (nth > 1) {
#pragma omp parallel num_threads(nth)
    body(omp_get_thread_num(), omp_get_num_threads());
    return;
  }
#endif
  body(0, 1);
}

void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, double alpha, const double* A, int64_t lda,
          const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (!omp_in_parallel() && M * N * K > 100000)
#endif
  for (int64_t i = 0; i < M; i++) {
    std::vector<double> row((size_t)N, 0.0);
    for (int64_t k = 0; k < K; k++) {
      double a = transA ? A[k * lda + i] : A[i * lda + k];
      if (a == 0.0) continue;
      if (!transB) {
        const double* b = B + k * ldb;
        for (int64_t j = 0; j < N; j++) row[j] += a * b[j];
      } else {
        for (int64_t j = 0; j < N; j++) row[j] += a * B[j * ldb + k];
      }
    }
    double* c = C + i * ldc;
    for (int64_t j = 0; j < N; j++) c[j] = alpha * row[j] + (beta == 0.0 ? 0.0 : beta * c[j]);
  }
}

}  // namespace connito
