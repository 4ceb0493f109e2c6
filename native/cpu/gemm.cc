// gemm: C = alpha·op(A)·op(B) + beta·C, row-major (see gemm_cpu.h).
//
// float path, BLIS-style (Goto) blocking:
//   for jc in N step NC:                 B block (KC×NC) packed once per (jc, pc), shared by threads
//     for pc in K step KC:               A slice (M×KC) packed once per (jc, pc), shared by threads
//       each thread owns a rectangle of micro-tiles; inside it:
//         for ic in its rows step MC:    A block (MC×KC) stays in L2
//           for jr in its cols step NR:  B micro-panel (KC×NR) stays in L1
//             for ir in block step MR:   microkernel: MR×NR accumulators in registers
// Packed layouts: A micro-panel = [MR][kc] (each row contiguous: packing a row-major A is a plain
// row copy), B micro-panel = [kc][NR] (one vector load per k). The transposed operands (Aᵀ, and Bᵀ of
// the C = X·Wᵀ forward GEMMs) are packed with 16×16 in-register transposes on AVX-512. Ragged edges
// are zero-padded so the microkernel always runs full tiles and only the store is masked. The microkernel is picked once from CPUID (AVX-512F, AVX2+FMA, portable C++): every ISA
// variant is compiled with a function-level target attribute, so the build needs no -march flag and
// the binary runs on any x86-64 (and, through the portable kernel, on any other CPU).
#include "gemm_cpu.h"

// GCC 12 flags its own AVX-512 intrinsics (_mm512_set1_ps and friends) with a false -Wmaybe-uninitialized.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

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
      float a = A[r * kc + k];
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
      __m256 a = _mm256_broadcast_ss(A + r * kc + k);
      c0[r] = _mm256_fmadd_ps(a, b0, c0[r]);
      c1[r] = _mm256_fmadd_ps(a, b1, c1[r]);
    }
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
      __m512 a = _mm512_set1_ps(A[r * kc + k]);
      c0[r] = _mm512_fmadd_ps(a, b0, c0[r]);
      c1[r] = _mm512_fmadd_ps(a, b1, c1[r]);
    }
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

#ifdef CNM_X86
// 16×16 transpose in registers: out[c][i] = src[i·lds + c] for i, c < 16.
__attribute__((target("avx512f"))) inline void transpose16(const float* src, int64_t lds, __m512 out[16]) {
  __m512 r[16], t[16];
  for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(src + i * lds);
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xee);
    r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xee);
  }
  for (int i = 0; i < 16; i += 8) {
    for (int j = 0; j < 4; j++) {
      t[i + j] = _mm512_shuffle_f32x4(r[i + j], r[i + 4 + j], 0x88);
      t[i + 4 + j] = _mm512_shuffle_f32x4(r[i + j], r[i + 4 + j], 0xdd);
    }
  }
  for (int j = 0; j < 8; j++) {
    r[j] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0x88);
    r[j + 8] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0xdd);
  }
  // unpack (pairs) → shuffle_ps (quads within 128-bit lanes) → two lane transposes: r[c] = column c.
  for (int c = 0; c < 16; c++) out[c] = r[c];
}

// Full 16-row blocks of a transposed A: op(A) rows [i, ie) → [MR][kc] panels. Returns where it stopped.
__attribute__((target("avx512f"))) int64_t pack_A_trans_avx512(const float* A, int64_t lda, int64_t i0, int64_t p0,
                                                                int64_t kc, int MR, float* dst, int64_t i, int64_t ie) {
  for (; i + 16 <= ie; i += 16) {
    int64_t k = 0;
    for (; k + 16 <= kc; k += 16) {
      __m512 cols[16];
      transpose16(A + (p0 + k) * lda + i0 + i, lda, cols);  // cols[c] = op(A) row i+c, k..k+15
      for (int c = 0; c < 16; c++) {
        const int64_t ii = i + c;
        _mm512_storeu_ps(dst + (ii / MR) * kc * MR + (ii % MR) * kc + k, cols[c]);
      }
    }
    for (; k < kc; k++)
      for (int c = 0; c < 16; c++) {
        const int64_t ii = i + c;
        dst[(ii / MR) * kc * MR + (ii % MR) * kc + k] = A[(p0 + k) * lda + i0 + ii];
      }
  }
  return i;
}

// Full 16-column blocks of a transposed B: op(B) columns [j, je) → [kc][NR] panels. Returns where it stopped.
__attribute__((target("avx512f"))) int64_t pack_B_trans_avx512(const float* B, int64_t ldb, int64_t p0, int64_t kc,
                                                                int64_t j0, int NR, float* dst, int64_t j, int64_t je) {
  for (; j + 16 <= je; j += 16) {
    float* d = dst + (j / NR) * kc * NR + (j % NR);
    int64_t k = 0;
    for (; k + 16 <= kc; k += 16) {
      __m512 rows[16];
      transpose16(B + (j0 + j) * ldb + p0 + k, ldb, rows);  // rows[t] = op(B) row k+t, cols j..j+15
      for (int t = 0; t < 16; t++) _mm512_storeu_ps(d + (k + t) * NR, rows[t]);
    }
    for (; k < kc; k++)
      for (int c = 0; c < 16; c++) d[k * NR + c] = B[(j0 + j + c) * ldb + p0 + k];
  }
  return j;
}

bool has_avx512() {
  static const bool v = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") != 0;
  }();
  return v;
}
#endif

// Pack rows [i0, i0+m) × cols [p0, p0+kc) of op(A) into MR-row micro-panels [MR][kc], panels [pa, pb).
void pack_A(bool transA, const float* A, int64_t lda, int64_t i0, int64_t m, int64_t p0, int64_t kc, int MR,
            float* dst, int64_t pa, int64_t pb) {
  if (pa >= pb) return;
  if (!transA) {
    for (int64_t ip = pa; ip < pb; ip++) {
      float* d = dst + ip * kc * MR;
      const int64_t r0 = ip * MR;
      const int rows = (int)std::min<int64_t>(MR, m - r0);
      for (int r = 0; r < rows; r++) std::memcpy(d + r * kc, A + (i0 + r0 + r) * lda + p0, sizeof(float) * kc);
      if (rows < MR) std::memset(d + rows * kc, 0, sizeof(float) * kc * (MR - rows));
    }
    return;
  }
  // op(A)[i][k] = A[k·lda + i]: rows i of the panels are columns of A.
  const int64_t ib = pa * MR, ie = std::min(m, pb * MR);
  int64_t i = ib;
#ifdef CNM_X86
  if (has_avx512()) i = pack_A_trans_avx512(A, lda, i0, p0, kc, MR, dst, i, ie);
#endif
  for (; i < ie; i++) {
    float* d = dst + (i / MR) * kc * MR + (i % MR) * kc;
    for (int64_t k = 0; k < kc; k++) d[k] = A[(p0 + k) * lda + i0 + i];
  }
  // Zero the padding rows of the last panel.
  for (int64_t ip = pa; ip < pb; ip++) {
    const int64_t r0 = ip * MR;
    const int rows = (int)std::min<int64_t>(MR, m - r0);
    if (rows < MR) std::memset(dst + ip * kc * MR + rows * kc, 0, sizeof(float) * kc * (MR - rows));
  }
}

// Pack rows [p0, p0+kc) × cols [j0, j0+n) of op(B) into NR-column micro-panels [kc][NR], panels [pa, pb).
void pack_B(bool transB, const float* B, int64_t ldb, int64_t p0, int64_t kc, int64_t j0, int64_t n, int NR,
            float* dst, int64_t pa, int64_t pb) {
  if (pa >= pb) return;
  if (!transB) {
    for (int64_t jp = pa; jp < pb; jp++) {
      float* d = dst + jp * kc * NR;
      const int64_t c0 = jp * NR;
      const int cols = (int)std::min<int64_t>(NR, n - c0);
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
    }
    return;
  }
  // op(B)[k][j] = B[j·ldb + k]: columns j of the panels are rows of B.
  const int64_t jb = pa * NR, je = std::min(n, pb * NR);
  int64_t j = jb;
#ifdef CNM_X86
  if (has_avx512() && NR % 16 == 0) j = pack_B_trans_avx512(B, ldb, p0, kc, j0, NR, dst, j, je);
#endif
  for (; j < je; j++) {
    float* d = dst + (j / NR) * kc * NR + (j % NR);
    const float* src = B + (j0 + j) * ldb + p0;
    for (int64_t k = 0; k < kc; k++) d[k * NR] = src[k];
  }
  // Zero the padding columns of the last panel.
  for (int64_t jp = pa; jp < pb; jp++) {
    const int64_t c0 = jp * NR;
    const int cols = (int)std::min<int64_t>(NR, n - c0);
    if (cols < NR)
      for (int64_t k = 0; k < kc; k++)
        for (int c = cols; c < NR; c++) dst[jp * kc * NR + k * NR + c] = 0.0f;
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
  const int64_t KC = kr.KC, NC = kr.NC, MC = kr.MC;
  const int64_t mpanels = (M + MR - 1) / MR, npanels = (N + NR - 1) / NR;

  int nth = 1;
#ifdef _OPENMP
  if (!omp_in_parallel()) {
    nth = omp_get_max_threads();
    // Threads only pay off when every one gets real work.
    if (2.0 * (double)M * (double)N * (double)K < 4e6) nth = 1;
  }
#endif
  // Each thread owns a block of C and packs what it needs itself: no barrier inside, so a thread
  // that the OS preempts does not stall the others. Split the dimension whose other operand is the
  // cheaper one to pack twice (rows: every thread packs all of B; columns: all of A).
  const bool split_rows = (N <= M && mpanels >= nth) || npanels < nth;
  if (split_rows) nth = (int)std::min<int64_t>(nth, mpanels);
  else nth = (int)std::min<int64_t>(nth, npanels);
  if (nth < 1) nth = 1;

  auto body = [&](int tid, int nthreads) {
    int64_t ra = 0, rb = mpanels, ca = 0, cb = npanels;
    if (split_rows) range_split(mpanels, nthreads, tid, ra, rb);
    else range_split(npanels, nthreads, tid, ca, cb);
    if (ra >= rb || ca >= cb) return;
    const int64_t i_begin = ra * MR, i_end = std::min(M, rb * MR);
    const int64_t j_begin = ca * NR, j_end = std::min(N, cb * NR);
    thread_local Scratch sa, sb;
    float* Ap = sa.get((size_t)MC * KC);
    float* Bp = sb.get((size_t)(((NC + NR - 1) / NR) * NR) * KC);
    for (int64_t jc = j_begin; jc < j_end; jc += NC) {
      const int64_t nc = std::min(NC, j_end - jc);
      const int64_t ncp = (nc + NR - 1) / NR;
      for (int64_t pc = 0; pc < K; pc += KC) {
        const int64_t kc = std::min(KC, K - pc);
        const float beta_eff = pc == 0 ? beta : 1.0f;
        pack_B(transB, B, ldb, pc, kc, jc, nc, NR, Bp, 0, ncp);
        for (int64_t ic = i_begin; ic < i_end; ic += MC) {
          const int64_t mc = std::min(MC, i_end - ic);
          const int64_t mcp = (mc + MR - 1) / MR;
          pack_A(transA, A, lda, ic, mc, pc, kc, MR, Ap, 0, mcp);
          for (int64_t jp = 0; jp < ncp; jp++) {
            const float* bp = Bp + jp * kc * NR;
            const int64_t j = jc + jp * NR;
            const int nr = (int)std::min<int64_t>(NR, j_end - j);
            for (int64_t ip = 0; ip < mcp; ip++) {
              const int64_t i = ic + ip * MR;
              const int mr = (int)std::min<int64_t>(MR, i_end - i);
              kr.fn(kc, Ap + ip * kc * MR, bp, C + i * ldc + j, ldc, alpha, beta_eff, mr, nr);
            }
          }
        }
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
