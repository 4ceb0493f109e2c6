// CPU kernels of the training engine, one family per file in native/cpu/ (llm.c style: forward and
// backward side by side, explicit sizes and strides). Templated on the scalar type: float is the
// engine, double is the gradient-check reference path. Row-major everywhere; `N` is the number of
// tokens (batch·seq) unless stated otherwise.
#pragma once

#include <cstdint>
#include <vector>

namespace connito {

// ---------------------------------------------------------------- rmsnorm.cc
// y[n,:] = w ⊙ x[n,:] · r[n],  r[n] = (mean(x[n,:]²) + eps)^−½ (accumulated in double).
// Backward (input gradient only; norm weights are frozen), with g = w ⊙ dy:
//   dx = r·g − x·r³·mean(g ⊙ x);  written (accumulate=false) or added (accumulate=true).
template <typename T>
void rmsnorm_forward(const T* x, const T* w, T* y, T* rstd, int64_t N, int64_t D, double eps, int64_t ldx = -1,
                     int64_t ldy = -1);
template <typename T>
void rmsnorm_backward(const T* dy, const T* x, const T* w, const T* rstd, T* dx, int64_t N, int64_t D,
                      bool accumulate, int64_t ldx = -1, int64_t lddx = -1);

// ---------------------------------------------------------------- rope.cc
// Interleaved ("complex") RoPE on pairs (2i, 2i+1) of a d-wide slice, position = token index mod
// seq. cs[t·d/2 + i] = (cos, sin)·attention_factor for position t. The float tables replicate
// transformers: angle = float(inv_freq_f32 · float(t)), cos/sin of that float angle.
template <typename T>
void rope_tables(const std::vector<double>& inv_freq, double attention_factor, int64_t seq, std::vector<T>& cos_t,
                 std::vector<T>& sin_t);
// x[n, off + 2i], x[n, off + 2i + 1] for n in [0, N), head h in [0, heads): row stride ld, head stride hs.
template <typename T>
void rope_forward(T* x, int64_t N, int64_t seq, int64_t heads, int64_t ld, int64_t hs, int64_t off, int64_t d,
                  const T* cos_t, const T* sin_t);
// The transpose rotation: turns the gradient w.r.t. the rotated values into the gradient w.r.t.
// the inputs (in place).
template <typename T>
void rope_backward(T* dx, int64_t N, int64_t seq, int64_t heads, int64_t ld, int64_t hs, int64_t off, int64_t d,
                   const T* cos_t, const T* sin_t);

// ---------------------------------------------------------------- attention.cc
// MLA causal attention core for B sequences of length S with H heads:
//   score[t,s] = scale·(q_nope[t]·k_nope[s] + q_pe[t]·k_pe[s]),  s ≤ t;  P = softmax_s(score)
//   o[t] = Σ_s P[t,s]·v[s]
// Buffers (rows are tokens n = b·S + t):
//   q   [N, H·(dn+dr)]  per head [nope | pe] (pe already rotated)
//   kv  [N, H·(dn+dv)]  per head [k_nope | v]
//   kpe [N, dr]         shared by all heads (rotated)
//   o   [N, H·dv]
//   lse [B·H·S]         log-sum-exp of each score row (for the backward recomputation)
// The score matrix is never stored: backward recomputes P from q, k and lse (FlashAttention-2 at
// the granularity of a block of query rows).
struct AttnDims {
  int64_t B, S, H, dn, dr, dv;
  double scale;
};
template <typename T>
void attention_forward(const AttnDims& d, const T* q, const T* kv, const T* kpe, T* o, T* lse);
// Gradients w.r.t. q (dq, written), kv (dkv, written) and kpe (dkpe, written), given do.
template <typename T>
void attention_backward(const AttnDims& d, const T* q, const T* kv, const T* kpe, const T* o, const T* lse,
                        const T* dout, T* dq, T* dkv, T* dkpe);

// ---------------------------------------------------------------- swiglu.cc
// gu[n, 0:W] = gate, gu[n, W:2W] = up (one GEMM against the stacked [gate; up] weight);
// a = silu(gate) ⊙ up.  Backward: dgate = da ⊙ up ⊙ silu'(gate), dup = da ⊙ silu(gate).
template <typename T>
void swiglu_forward(const T* gu, T* a, int64_t N, int64_t W);
template <typename T>
void swiglu_backward(const T* da, const T* gu, T* dgu, int64_t N, int64_t W);

// ---------------------------------------------------------------- moe_router.cc
// Connito partial-MoE routing (PROTOCOL §9.3): p = softmax(logits) over all E experts (fp32 or
// better); every expert not in `allowed` is replaced by −1e4; greedy top-k (ties → lower id);
// weight = p[e]·routed_scaling_factor (no renormalisation).
struct Routing {
  int64_t N = 0, K = 0;
  std::vector<int32_t> expert;  // [N·K] org expert id of slot (n, k)
  std::vector<int32_t> local;   // [N·K] index into the allowed list
  std::vector<double> weight;   // [N·K] routing weight (p·scale)
};
template <typename T>
void router_forward(const T* logits, T* probs, int64_t N, int64_t E, int64_t K, const std::vector<int64_t>& allowed,
                    double scaling, Routing& r);
// dweight [N·K] = ∂L/∂weight; writes dlogits [N, E] = p ⊙ (dp − Σ p·dp) with dp = scaling·dweight at
// the chosen experts.
template <typename T>
void router_backward(const T* probs, const Routing& r, const T* dweight, T* dlogits, int64_t E, double scaling);

// ---------------------------------------------------------------- cross_entropy.cc
// Next-token cross entropy of one block of rows: logits [n, V] (overwritten with dlogits when
// grad_scale != 0), targets [n] (all valid). Returns Σ CE over the rows (double).
//   dlogits = (softmax(logits) − onehot(target))·grad_scale
template <typename T>
double cross_entropy_block(T* logits, const int32_t* targets, int64_t n, int64_t V, T grad_scale);

// ---------------------------------------------------------------- embedding.cc
template <typename T>
void embedding_forward(const int32_t* tokens, const T* table, T* out, int64_t N, int64_t D);
// dtable[tokens[n], :] += dout[n, :]. The engine's embedding is frozen; this exists for the gradient
// checks and for a future trainable embedding.
template <typename T>
void embedding_backward(const int32_t* tokens, const T* dout, T* dtable, int64_t N, int64_t D);

}  // namespace connito
