// MLA causal attention core, forward and backward (layouts in cpu_ops.h).
//
// Work unit: one (sequence b, head h) pair per OpenMP task, processed in blocks of kRowBlock query
// rows; block [r0, r1) only needs keys [0, r1) (causal), so the upper triangle is computed only
// inside the diagonal block. The scores of a block live in a thread-local [rows × r1] scratch:
//   S  = scale·(Qn·Knᵀ + Qp·Kpᵀ)              two GEMMs (nope and rope parts), masked s > t
//   P  = exp(S − lse_t)                       lse kept from the forward pass
//   forward:  O = P·V
//   backward: dP = dO·Vᵀ;  dS = P ⊙ (dP − D_t)·scale with D_t = dO_t·O_t
//             dQn = dS·Kn, dQp = dS·Kp, dKn += dSᵀ·Qn, dKp += dSᵀ·Qp, dV += Pᵀ·dO
// k_pe is shared by the heads, so its gradient is gathered per head and reduced afterwards.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "cpu_ops.h"
#include "gemm_cpu.h"
#include "vmath_cpu.h"

namespace connito {
namespace {
constexpr int64_t kRowBlock = 64;

template <typename T>
struct HeadView {
  const T *qn, *qp, *kn, *kp, *v;
  int64_t ldq, ldkv, ldkp;
};

template <typename T>
HeadView<T> head_view(const AttnDims& d, const T* q, const T* kv, const T* kpe, int64_t b, int64_t h) {
  HeadView<T> hv;
  hv.ldq = d.H * (d.dn + d.dr);
  hv.ldkv = d.H * (d.dn + d.dv);
  hv.ldkp = d.dr;
  hv.qn = q + b * d.S * hv.ldq + h * (d.dn + d.dr);
  hv.qp = hv.qn + d.dn;
  hv.kn = kv + b * d.S * hv.ldkv + h * (d.dn + d.dv);
  hv.v = hv.kn + d.dn;
  hv.kp = kpe + b * d.S * hv.ldkp;
  return hv;
}

// Scaled scores of rows [r0, r0+m) against keys [0, ncols) into s (row stride ncols).
template <typename T>
void block_scores(const AttnDims& d, const HeadView<T>& hv, int64_t r0, int64_t m, int64_t ncols, T* s) {
  const T scale = (T)d.scale;
  gemm(false, true, m, ncols, d.dn, scale, hv.qn + r0 * hv.ldq, hv.ldq, hv.kn, hv.ldkv, T(0), s, ncols);
  gemm(false, true, m, ncols, d.dr, scale, hv.qp + r0 * hv.ldq, hv.ldq, hv.kp, hv.ldkp, T(1), s, ncols);
}

}  // namespace

template <typename T>
void attention_forward(const AttnDims& d, const T* q, const T* kv, const T* kpe, T* o, T* lse) {
  const int64_t pairs = d.B * d.H;
  const int64_t ldo = d.H * d.dv;
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t pi = 0; pi < pairs; pi++) {
    const int64_t b = pi / d.H, h = pi % d.H;
    const HeadView<T> hv = head_view(d, q, kv, kpe, b, h);
    T* ob = o + b * d.S * ldo + h * d.dv;
    T* lrow = lse + (b * d.H + h) * d.S;
    thread_local std::vector<T> sbuf;
    sbuf.resize((size_t)(kRowBlock * d.S));
    for (int64_t r0 = 0; r0 < d.S; r0 += kRowBlock) {
      const int64_t m = std::min(kRowBlock, d.S - r0), ncols = r0 + m;
      T* s = sbuf.data();
      block_scores(d, hv, r0, m, ncols, s);
      for (int64_t i = 0; i < m; i++) {
        const int64_t t = r0 + i;
        T* row = s + i * ncols;
        T mx = -std::numeric_limits<T>::infinity();
        for (int64_t j = 0; j <= t; j++) mx = std::max(mx, row[j]);
        const double sum = exp_shift_sum(row, t + 1, mx);
        const T inv = (T)(1.0 / sum);
        for (int64_t j = 0; j <= t; j++) row[j] *= inv;
        for (int64_t j = t + 1; j < ncols; j++) row[j] = T(0);
        lrow[t] = mx + (T)std::log(sum);
      }
      gemm(false, false, m, d.dv, ncols, T(1), s, ncols, hv.v, hv.ldkv, T(0), ob + r0 * ldo, ldo);
    }
  }
}

template <typename T>
void attention_backward(const AttnDims& d, const T* q, const T* kv, const T* kpe, const T* o, const T* lse,
                        const T* dout, T* dq, T* dkv, T* dkpe) {
  const int64_t pairs = d.B * d.H;
  const int64_t ldo = d.H * d.dv;
  const int64_t ldq = d.H * (d.dn + d.dr), ldkv = d.H * (d.dn + d.dv);
  // Per-head k_pe gradients; kept across calls (the engine runs on one worker thread at a time).
  thread_local std::vector<T> dkp_heads;
  if (dkp_heads.size() < (size_t)(pairs * d.S * d.dr)) dkp_heads.resize((size_t)(pairs * d.S * d.dr));
  // Inside the parallel regions below, `dkp_heads` would name each thread's own (empty) instance.
  T* const dkp_all = dkp_heads.data();
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t pi = 0; pi < pairs; pi++) {
    const int64_t b = pi / d.H, h = pi % d.H;
    const HeadView<T> hv = head_view(d, q, kv, kpe, b, h);
    const T* ob = o + b * d.S * ldo + h * d.dv;
    const T* dob = dout + b * d.S * ldo + h * d.dv;
    const T* lrow = lse + (b * d.H + h) * d.S;
    T* dqn = dq + b * d.S * ldq + h * (d.dn + d.dr);
    T* dqp = dqn + d.dn;
    T* dkn = dkv + b * d.S * ldkv + h * (d.dn + d.dv);
    T* dv = dkn + d.dn;
    T* dkp = dkp_all + pi * d.S * d.dr;
    for (int64_t t = 0; t < d.S; t++) {
      std::fill(dkn + t * ldkv, dkn + t * ldkv + d.dn + d.dv, T(0));
      std::fill(dkp + t * d.dr, dkp + (t + 1) * d.dr, T(0));
    }
    thread_local std::vector<T> sbuf, dpbuf, dvec;
    sbuf.resize((size_t)(kRowBlock * d.S));
    dpbuf.resize((size_t)(kRowBlock * d.S));
    dvec.resize((size_t)d.S);
    for (int64_t t = 0; t < d.S; t++) {
      double acc = 0.0;
      for (int64_t j = 0; j < d.dv; j++) acc += (double)dob[t * ldo + j] * (double)ob[t * ldo + j];
      dvec[t] = (T)acc;
    }
    const T scale = (T)d.scale;
    for (int64_t r0 = 0; r0 < d.S; r0 += kRowBlock) {
      const int64_t m = std::min(kRowBlock, d.S - r0), ncols = r0 + m;
      T* p = sbuf.data();
      T* ds = dpbuf.data();
      block_scores(d, hv, r0, m, ncols, p);
      for (int64_t i = 0; i < m; i++) {
        const int64_t t = r0 + i;
        T* row = p + i * ncols;
        exp_shift_sum(row, t + 1, lrow[t]);
        for (int64_t j = t + 1; j < ncols; j++) row[j] = T(0);
      }
      gemm(false, true, m, ncols, d.dv, T(1), dob + r0 * ldo, ldo, hv.v, hv.ldkv, T(0), ds, ncols);
      for (int64_t i = 0; i < m; i++) {
        const int64_t t = r0 + i;
        const T* prow = p + i * ncols;
        T* drow = ds + i * ncols;
        for (int64_t j = 0; j < ncols; j++) drow[j] = prow[j] * (drow[j] - dvec[t]) * scale;
      }
      gemm(false, false, m, d.dn, ncols, T(1), ds, ncols, hv.kn, hv.ldkv, T(0), dqn + r0 * ldq, ldq);
      gemm(false, false, m, d.dr, ncols, T(1), ds, ncols, hv.kp, hv.ldkp, T(0), dqp + r0 * ldq, ldq);
      gemm(true, false, ncols, d.dn, m, T(1), ds, ncols, hv.qn + r0 * ldq, ldq, T(1), dkn, ldkv);
      gemm(true, false, ncols, d.dr, m, T(1), ds, ncols, hv.qp + r0 * ldq, ldq, T(1), dkp, d.dr);
      gemm(true, false, ncols, d.dv, m, T(1), p, ncols, dob + r0 * ldo, ldo, T(1), dv, ldkv);
    }
  }
  // Reduce the per-head k_pe gradients in head order (deterministic for any thread count).
  const int64_t N = d.B * d.S;
#pragma omp parallel for schedule(static) if (N > 16)
  for (int64_t n = 0; n < N; n++) {
    const int64_t b = n / d.S, t = n % d.S;
    T* out = dkpe + n * d.dr;
    for (int64_t j = 0; j < d.dr; j++) out[j] = T(0);
    for (int64_t h = 0; h < d.H; h++) {
      const T* src = dkp_all + ((b * d.H + h) * d.S + t) * d.dr;
      for (int64_t j = 0; j < d.dr; j++) out[j] += src[j];
    }
  }
}

template void attention_forward<float>(const AttnDims&, const float*, const float*, const float*, float*, float*);
template void attention_forward<double>(const AttnDims&, const double*, const double*, const double*, double*,
                                        double*);
template void attention_backward<float>(const AttnDims&, const float*, const float*, const float*, const float*,
                                        const float*, const float*, float*, float*, float*);
template void attention_backward<double>(const AttnDims&, const double*, const double*, const double*,
                                         const double*, const double*, const double*, double*, double*, double*);

}  // namespace connito
