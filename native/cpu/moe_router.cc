// Partial-MoE router (PROTOCOL §9.3): softmax over all E router logits, non-local experts replaced
// by −1e4 (so they are never chosen while at least k local experts exist, which the engine
// checks), greedy top-k, weight = p·routed_scaling_factor without renormalisation.
//   forward:  probs[n, e] = softmax(logits[n, :])[e]; slots (n, k) → expert id, local index, weight
//   backward: dp[e] = scaling·Σ_k dweight[n,k]·[expert(n,k) = e];  dlogits = p ⊙ (dp − Σ_e p_e·dp_e)
// Ties in p go to the lower expert id (torch.topk leaves tie order unspecified).
#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu_ops.h"

namespace connito {

template <typename T>
void router_forward(const T* logits, T* probs, int64_t N, int64_t E, int64_t K, const std::vector<int64_t>& allowed,
                    double scaling, Routing& r) {
  r.N = N;
  r.K = K;
  r.expert.assign((size_t)(N * K), -1);
  r.local.assign((size_t)(N * K), -1);
  r.weight.assign((size_t)(N * K), 0.0);
  const int64_t A = (int64_t)allowed.size();
#pragma omp parallel for schedule(static) if (N * E > 4096)
  for (int64_t n = 0; n < N; n++) {
    const T* z = logits + n * E;
    T* p = probs + n * E;
    T mx = z[0];
    for (int64_t e = 1; e < E; e++) mx = std::max(mx, z[e]);
    double sum = 0.0;
    for (int64_t e = 0; e < E; e++) sum += std::exp((double)(z[e] - mx));
    for (int64_t e = 0; e < E; e++) p[e] = (T)(std::exp((double)(z[e] - mx)) / sum);
    // Greedy top-k over the allowed experts (allowed is sorted ascending, so a strict '>' keeps
    // the lower id on ties).
    bool taken[256] = {false};
    std::vector<bool> taken_big;
    if (A > 256) taken_big.assign((size_t)A, false);
    for (int64_t k = 0; k < K; k++) {
      int64_t best = -1;
      for (int64_t a = 0; a < A; a++) {
        bool t = A > 256 ? (bool)taken_big[(size_t)a] : taken[a];
        if (t) continue;
        if (best < 0 || p[allowed[a]] > p[allowed[best]]) best = a;
      }
      if (A > 256) taken_big[(size_t)best] = true;
      else taken[best] = true;
      r.expert[n * K + k] = (int32_t)allowed[best];
      r.local[n * K + k] = (int32_t)best;
      r.weight[n * K + k] = (double)(T)((double)p[allowed[best]] * scaling);
    }
  }
}

template <typename T>
void router_backward(const T* probs, const Routing& r, const T* dweight, T* dlogits, int64_t E, double scaling) {
  const int64_t N = r.N, K = r.K;
#pragma omp parallel for schedule(static) if (N * E > 4096)
  for (int64_t n = 0; n < N; n++) {
    const T* p = probs + n * E;
    T* dz = dlogits + n * E;
    // dp is non-zero only at the chosen experts.
    double s = 0.0;
    for (int64_t k = 0; k < K; k++) {
      const int64_t e = r.expert[n * K + k];
      s += (double)p[e] * scaling * (double)dweight[n * K + k];
    }
    for (int64_t e = 0; e < E; e++) dz[e] = (T)(-(double)p[e] * s);
    for (int64_t k = 0; k < K; k++) {
      const int64_t e = r.expert[n * K + k];
      dz[e] += (T)((double)p[e] * scaling * (double)dweight[n * K + k]);
    }
  }
}

template void router_forward<float>(const float*, float*, int64_t, int64_t, int64_t, const std::vector<int64_t>&,
                                    double, Routing&);
template void router_forward<double>(const double*, double*, int64_t, int64_t, int64_t, const std::vector<int64_t>&,
                                     double, Routing&);
template void router_backward<float>(const float*, const Routing&, const float*, float*, int64_t, double);
template void router_backward<double>(const double*, const Routing&, const double*, double*, int64_t, double);

}  // namespace connito
