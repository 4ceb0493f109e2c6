// DeepSeek-V2 partial-MoE forward / backward on the CPU (see model_cpu.h).
//
// Per layer (N = B·S tokens, rows of every buffer are tokens):
//   hn   = RMSNorm(x)                                        [N, H]
//   q    = hn·Wqᵀ  (or RMSNorm(hn·Wqaᵀ)·Wqbᵀ)                 [N, nH·(dn+dr)], per head [nope | pe]
//   ckv  = hn·Wkvaᵀ = [c (R) | k_pe (dr)]                    [N, R+dr]
//   kv   = RMSNorm(c)·Wkvbᵀ                                  [N, nH·(dn+dv)], per head [k_nope | v]
//   RoPE on q_pe (every head) and k_pe (shared); attention core (attention.cc)
//   x2   = x + attn·Woᵀ
//   hn2  = RMSNorm(x2)
//   dense: y = SwiGLU(hn2·Wguᵀ)·Wdownᵀ
//   MoE:   y = Σ_k w_k·Expert_{e_k}(hn2) + Shared(hn2), routing in moe_router.cc
//   out  = x2 + y
// Head: hf = RMSNorm(x_L); logits = hf·Wlmᵀ computed in row blocks (only for scored positions,
// never the full [N, V] matrix) and turned into dlogits right away (cross_entropy.cc).
//
// Backward runs from the loss down to the MLP of the first layer with trainable experts and
// computes input gradients through every frozen op, weight gradients only for routed experts:
//   expert e (rows r = its slots, w = routing weight, a = SwiGLU(gu)):
//     dA' = dY·Wdown;  ∂L/∂w = dA'·a;  dA = w·dA'
//     dWdown += (w·dY)ᵀ·a;  dGU = SwiGLU'(dA);  dWgu += dGUᵀ·X;  dX = dGU·Wgu
//   router: ∂L/∂logits from ∂L/∂w (moe_router.cc), dhn2 += dlogits·Wr
// With recompute, only the residual stream is kept and a layer's forward is re-run right before
// its backward.
#include "model_cpu.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>

#include "gemm_cpu.h"

namespace connito {
namespace {

// CONNITO_ENGINE_PROFILE=1: wall time per phase of each run(), printed to stderr (benchmark aid).
struct Profile {
  bool on = std::getenv("CONNITO_ENGINE_PROFILE") != nullptr;
  std::map<std::string, double> ms;
  void report() {
    if (!on) return;
    double total = 0;
    for (auto& [k, v] : ms) total += v;
    std::fprintf(stderr, "[engine profile] total %.1f ms:", total);
    for (auto& [k, v] : ms) std::fprintf(stderr, " %s=%.1f", k.c_str(), v);
    std::fprintf(stderr, "\n");
    ms.clear();
  }
};
Profile& profile() {
  static Profile p;
  return p;
}
struct Phase {
  const char* name;
  std::chrono::steady_clock::time_point t0;
  explicit Phase(const char* n) : name(n) {
    if (profile().on) t0 = std::chrono::steady_clock::now();
  }
  ~Phase() {
    if (profile().on)
      profile().ms[name] += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  }
};

// Consecutive phases: next() closes the running one.
struct PhaseSeq {
  const char* cur = nullptr;
  std::chrono::steady_clock::time_point t0;
  void next(const char* n) {
    stop();
    if (!profile().on) return;
    cur = n;
    t0 = std::chrono::steady_clock::now();
  }
  void stop() {
    if (cur) profile().ms[cur] += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    cur = nullptr;
  }
  ~PhaseSeq() { stop(); }
};

}  // namespace

template <typename T>
size_t LayerActs<T>::bytes() const {
  size_t n = rstd1.capacity() + qa.capacity() + rstd_qa.capacity() + q.capacity() + ckv.capacity() +
             rstd_c.capacity() + kv.capacity() + kpe.capacity() + lse.capacity() + attn.capacity() +
             x2.capacity() + rstd2.capacity() + hn2.capacity() + gu.capacity() + probs.capacity() +
             sh_gu.capacity();
  for (const auto& v : ex_gu) n += v.capacity();
  return n * sizeof(T);
}

template <typename T>
ModelView<T> make_view(const ModelConfig& c, ParamStore<T>& w, ParamStore<T>* grads) {
  ModelView<T> v;
  auto P = [&](const std::string& n) -> const T* {
    T* p = w.find(n);
    if (!p) throw std::logic_error("internal: parameter " + n + " is not in the store");
    return p;
  };
  v.embed = P("model.embed_tokens.weight");
  v.final_norm = P("model.norm.weight");
  v.lm_head = P("lm_head.weight");
  v.layers.resize((size_t)c.num_hidden_layers);
  for (int64_t l = 0; l < c.num_hidden_layers; l++) {
    LayerView<T>& lv = v.layers[l];
    const std::string p = "model.layers." + std::to_string(l) + ".";
    lv.moe = c.is_moe_layer(l);
    lv.in_norm = P(p + "input_layernorm.weight");
    lv.post_norm = P(p + "post_attention_layernorm.weight");
    if (c.q_lora_rank > 0) {
      lv.q_a = P(p + "self_attn.q_a_proj.weight");
      lv.q_a_norm = P(p + "self_attn.q_a_layernorm.weight");
      lv.q_b = P(p + "self_attn.q_b_proj.weight");
    } else {
      lv.q_proj = P(p + "self_attn.q_proj.weight");
    }
    lv.kv_a = P(p + "self_attn.kv_a_proj_with_mqa.weight");
    lv.kv_a_norm = P(p + "self_attn.kv_a_layernorm.weight");
    lv.kv_b = P(p + "self_attn.kv_b_proj.weight");
    lv.o_proj = P(p + "self_attn.o_proj.weight");
    if (lv.moe) {
      lv.router = P(p + "mlp.gate.weight");
      if (c.n_shared_experts > 0) {
        lv.sh_gu = P(p + "mlp.shared_experts.gate_proj.weight");  // [gate; up] block
        lv.sh_down = P(p + "mlp.shared_experts.down_proj.weight");
      }
      for (size_t i = 0; i < w.specs.size(); i++) {
        const ParamSpec& s = w.specs[i];
        if (s.layer != l || s.expert < 0) continue;
        const bool is_gu = s.name.size() >= 12 && s.name.compare(s.name.size() - 12, 12, "gate_up_proj") == 0;
        T* g = grads ? grads->find(s.name) : nullptr;
        if (is_gu) {
          lv.experts.push_back(s.expert);
          lv.ex_gu.push_back(w.data(i));
          lv.gex_gu.push_back(g);
        } else {
          lv.ex_down.push_back(w.data(i));
          lv.gex_down.push_back(g);
        }
      }
    } else {
      lv.mlp_gu = P(p + "mlp.gate_proj.weight");  // [gate; up] block
      lv.mlp_down = P(p + "mlp.down_proj.weight");
    }
  }
  return v;
}

template <typename T>
CpuModel<T>::CpuModel(const ModelConfig& c, bool recompute) : c_(c), rope_(derive_rope(c)), recompute_(recompute) {
  acts_.resize((size_t)c.num_hidden_layers);
}

template <typename T>
int64_t CpuModel<T>::count_targets(const int32_t* labels, int64_t B, int64_t S) {
  int64_t n = 0;
  for (int64_t b = 0; b < B; b++)
    for (int64_t t = 0; t + 1 < S; t++) n += labels[b * S + t + 1] != -100;
  return n;
}

template <typename T>
size_t CpuModel<T>::workspace_bytes() const {
  size_t n = 0;
  for (const auto& a : acts_) n += a.bytes();
  n += scratch_acts_.bytes();
  for (const auto& x : xs_) n += x.capacity() * sizeof(T);
  for (const auto* v : {&hn_, &tmp_a_, &tmp_b_, &tmp_c_, &dx2_, &dhn_, &dgu_, &logits_, &rows_h_, &drows_h_, &xe_,
                        &ye_, &dye_, &hf_, &rstd_f_, &dhf_, &dweight_})
    n += v->capacity() * sizeof(T);
  return n;
}

template <typename T>
static inline T* grow(std::vector<T>& v, int64_t n) {
  if ((int64_t)v.size() < n) v.resize((size_t)n);
  return v.data();
}

// SwiGLU MLP on M rows of width H: gu = in·W_guᵀ ([gate | up], kept for backward),
// out = (silu(gate)·up)·W_downᵀ. `act` is scratch.
template <typename T>
static void swiglu_mlp_forward(int64_t M, int64_t H, int64_t W, const T* in, const T* w_gu, const T* w_down, T* gu,
                               std::vector<T>& act, T* out) {
  gemm(false, true, M, 2 * W, H, T(1), in, H, w_gu, H, T(0), gu, 2 * W);
  T* a = grow(act, M * W);
  swiglu_forward(gu, a, M, W);
  gemm(false, true, M, H, W, T(1), a, W, w_down, W, T(0), out, H);
}

// Input gradient of swiglu_mlp_forward: din = beta·din + ∂/∂in. `da` and `dgu` are scratch.
template <typename T>
static void swiglu_mlp_backward_input(int64_t M, int64_t H, int64_t W, const T* dout, const T* gu, const T* w_gu,
                                      const T* w_down, std::vector<T>& da, std::vector<T>& dgu, T beta, T* din) {
  T* d_act = grow(da, M * W);
  gemm(false, false, M, W, H, T(1), dout, H, w_down, W, T(0), d_act, W);
  T* d_gu = grow(dgu, M * 2 * W);
  swiglu_backward(d_act, gu, d_gu, M, W);
  gemm(false, false, M, H, 2 * W, T(1), d_gu, 2 * W, w_gu, H, beta, din, H);
}

template <typename T>
void CpuModel<T>::layer_forward(int64_t l, const LayerView<T>& w, const T* x, T* out, LayerActs<T>& a) {
  const int64_t N = N_, H = c_.hidden_size, nH = c_.num_attention_heads;
  const int64_t dn = c_.qk_nope_head_dim, dr = c_.qk_rope_head_dim, dv = c_.v_head_dim, dq = dn + dr;
  const int64_t R = c_.kv_lora_rank, Rq = c_.q_lora_rank;
  const double eps = c_.rms_norm_eps;

  T* hn = grow(hn_, N * H);
  PhaseSeq ps;
  ps.next("f.attn_proj");
  a.rstd1.resize((size_t)N);
  rmsnorm_forward(x, w.in_norm, hn, a.rstd1.data(), N, H, eps);

  a.q.resize((size_t)(N * nH * dq));
  if (Rq > 0) {
    a.qa.resize((size_t)(N * Rq));
    a.rstd_qa.resize((size_t)N);
    gemm(false, true, N, Rq, H, T(1), hn, H, w.q_a, H, T(0), a.qa.data(), Rq);
    T* qan = grow(tmp_a_, N * Rq);
    rmsnorm_forward(a.qa.data(), w.q_a_norm, qan, a.rstd_qa.data(), N, Rq, kLoraNormEps);
    gemm(false, true, N, nH * dq, Rq, T(1), qan, Rq, w.q_b, Rq, T(0), a.q.data(), nH * dq);
  } else {
    gemm(false, true, N, nH * dq, H, T(1), hn, H, w.q_proj, H, T(0), a.q.data(), nH * dq);
  }
  a.ckv.resize((size_t)(N * (R + dr)));
  gemm(false, true, N, R + dr, H, T(1), hn, H, w.kv_a, H, T(0), a.ckv.data(), R + dr);
  T* cn = grow(tmp_b_, N * R);
  a.rstd_c.resize((size_t)N);
  rmsnorm_forward(a.ckv.data(), w.kv_a_norm, cn, a.rstd_c.data(), N, R, kLoraNormEps, R + dr, R);
  a.kv.resize((size_t)(N * nH * (dn + dv)));
  gemm(false, true, N, nH * (dn + dv), R, T(1), cn, R, w.kv_b, R, T(0), a.kv.data(), nH * (dn + dv));
  a.kpe.resize((size_t)(N * dr));
  for (int64_t n = 0; n < N; n++) std::memcpy(&a.kpe[n * dr], &a.ckv[n * (R + dr) + R], sizeof(T) * dr);
  rope_forward(a.kpe.data(), N, S_, 1, dr, 0, 0, dr, cos_.data(), sin_.data());
  rope_forward(a.q.data(), N, S_, nH, nH * dq, dq, dn, dr, cos_.data(), sin_.data());

  const AttnDims dims{B_, S_, nH, dn, dr, dv, rope_.softmax_scale};
  a.lse.resize((size_t)(B_ * nH * S_));
  a.attn.resize((size_t)(N * nH * dv));
  ps.next("f.attn_core");
  attention_forward(dims, a.q.data(), a.kv.data(), a.kpe.data(), a.attn.data(), a.lse.data());
  ps.next("f.attn_proj");

  a.x2.resize((size_t)(N * H));
  gemm(false, true, N, H, nH * dv, T(1), a.attn.data(), nH * dv, w.o_proj, nH * dv, T(0), a.x2.data(), H);
  T* x2 = a.x2.data();
#pragma omp parallel for schedule(static) if (N * H > 65536)
  for (int64_t i = 0; i < N * H; i++) x2[i] += x[i];
  a.rstd2.resize((size_t)N);
  a.hn2.resize((size_t)(N * H));
  rmsnorm_forward(x2, w.post_norm, a.hn2.data(), a.rstd2.data(), N, H, eps);
  const T* hn2 = a.hn2.data();

  if (!w.moe) {
    const int64_t Id = c_.intermediate_size;
    a.gu.resize((size_t)(N * 2 * Id));
    ps.next("f.dense");
    swiglu_mlp_forward(N, H, Id, hn2, w.mlp_gu, w.mlp_down, a.gu.data(), tmp_a_, out);
  } else {
    const int64_t E = c_.n_routed_experts, K = c_.num_experts_per_tok, I = c_.moe_intermediate_size;
    T* logits = grow(tmp_c_, N * E);
    ps.next("f.router");
    gemm(false, true, N, E, H, T(1), hn2, H, w.router, H, T(0), logits, E);
    a.probs.resize((size_t)(N * E));
    router_forward(logits, a.probs.data(), N, E, K, w.experts, c_.routed_scaling_factor, a.routing);
    if (w.sh_gu) {
      const int64_t Sh = I * c_.n_shared_experts;
      a.sh_gu.resize((size_t)(N * 2 * Sh));
      ps.next("f.shared");
      swiglu_mlp_forward(N, H, Sh, hn2, w.sh_gu, w.sh_down, a.sh_gu.data(), tmp_a_, out);
    } else {
      std::fill(out, out + N * H, T(0));
    }
    const size_t nloc = w.experts.size();
    a.ex_slots.assign(nloc, {});
    ps.next("f.experts");
    a.ex_gu.resize(nloc);
    for (int64_t s = 0; s < N * K; s++) a.ex_slots[(size_t)a.routing.local[s]].push_back(s);
    for (size_t e = 0; e < nloc; e++) {
      const auto& slots = a.ex_slots[e];
      const int64_t ne = (int64_t)slots.size();
      if (ne == 0) continue;
      T* xe = grow(xe_, ne * H);
      for (int64_t r = 0; r < ne; r++) std::memcpy(xe + r * H, hn2 + (slots[r] / K) * H, sizeof(T) * H);
      a.ex_gu[e].resize((size_t)(ne * 2 * I));
      T* ye = grow(ye_, ne * H);
      swiglu_mlp_forward(ne, H, I, xe, w.ex_gu[e], w.ex_down[e], a.ex_gu[e].data(), tmp_a_, ye);
      const Routing& rt = a.routing;
#pragma omp parallel for schedule(static) if (ne * H > 65536)
      for (int64_t r = 0; r < ne; r++) {
        const T wt = (T)rt.weight[slots[r]];
        T* o = out + (slots[r] / K) * H;
        const T* y = ye + r * H;
        for (int64_t i = 0; i < H; i++) o[i] += wt * y[i];
      }
    }
  }
#pragma omp parallel for schedule(static) if (N * H > 65536)
  for (int64_t i = 0; i < N * H; i++) out[i] += x2[i];
  (void)l;
}

template <typename T>
void CpuModel<T>::layer_backward(int64_t l, const LayerView<T>& w, const T* x, LayerActs<T>& a, T* dx,
                                 bool need_input_grad) {
  const int64_t N = N_, H = c_.hidden_size, nH = c_.num_attention_heads;
  const int64_t dn = c_.qk_nope_head_dim, dr = c_.qk_rope_head_dim, dv = c_.v_head_dim, dq = dn + dr;
  const int64_t R = c_.kv_lora_rank, Rq = c_.q_lora_rank;
  (void)l;

  T* dhn = grow(dhn_, N * H);
  if (w.moe) {
    PhaseSeq ps;
    ps.next("b.experts");
    const int64_t E = c_.n_routed_experts, K = c_.num_experts_per_tok, I = c_.moe_intermediate_size;
    const Routing& rt = a.routing;
    T* dweight = grow(dweight_, N * K);
    std::fill(dweight, dweight + N * K, T(0));
    if (need_input_grad) std::fill(dhn, dhn + N * H, T(0));
    for (size_t e = 0; e < w.experts.size(); e++) {
      const auto& slots = a.ex_slots[e];
      const int64_t ne = (int64_t)slots.size();
      if (ne == 0) continue;
      T* dye = grow(dye_, ne * H);
      for (int64_t r = 0; r < ne; r++) std::memcpy(dye + r * H, dx + (slots[r] / K) * H, sizeof(T) * H);
      T* act = grow(tmp_a_, ne * I);
      swiglu_forward(a.ex_gu[e].data(), act, ne, I);
      T* da = grow(tmp_b_, ne * I);
      gemm(false, false, ne, I, H, T(1), dye, H, w.ex_down[e], I, T(0), da, I);
#pragma omp parallel for schedule(static) if (ne * (H + I) > 65536)
      for (int64_t r = 0; r < ne; r++) {
        const T wt = (T)rt.weight[slots[r]];
        T* dar = da + r * I;
        if (need_input_grad) {
          double dot = 0.0;
          const T* ar = act + r * I;
          for (int64_t i = 0; i < I; i++) dot += (double)dar[i] * (double)ar[i];
          dweight[slots[r]] = (T)dot;
        }
        for (int64_t i = 0; i < I; i++) dar[i] *= wt;
        T* dyr = dye + r * H;
        for (int64_t i = 0; i < H; i++) dyr[i] *= wt;
      }
      if (w.gex_down[e]) gemm(true, false, H, I, ne, T(1), dye, H, act, I, T(1), w.gex_down[e], I);
      T* dgu = grow(dgu_, ne * 2 * I);
      swiglu_backward(da, a.ex_gu[e].data(), dgu, ne, I);
      if (w.gex_gu[e]) {
        T* xe = grow(xe_, ne * H);
        for (int64_t r = 0; r < ne; r++) std::memcpy(xe + r * H, a.hn2.data() + (slots[r] / K) * H, sizeof(T) * H);
        gemm(true, false, 2 * I, H, ne, T(1), dgu, 2 * I, xe, H, T(1), w.gex_gu[e], H);
      }
      if (need_input_grad) {
        T* dxe = grow(ye_, ne * H);
        gemm(false, false, ne, H, 2 * I, T(1), dgu, 2 * I, w.ex_gu[e], H, T(0), dxe, H);
#pragma omp parallel for schedule(static) if (ne * H > 65536)
        for (int64_t r = 0; r < ne; r++) {
          T* o = dhn + (slots[r] / K) * H;
          const T* s = dxe + r * H;
          for (int64_t i = 0; i < H; i++) o[i] += s[i];
        }
      }
    }
    if (!need_input_grad) return;
    T* dlogits = grow(tmp_c_, N * E);
    ps.next("b.router");
    router_backward(a.probs.data(), rt, dweight, dlogits, E, c_.routed_scaling_factor);
    gemm(false, false, N, H, E, T(1), dlogits, E, w.router, H, T(1), dhn, H);
    if (w.sh_gu) {
      const int64_t Sh = I * c_.n_shared_experts;
      ps.next("b.shared");
      swiglu_mlp_backward_input(N, H, Sh, dx, a.sh_gu.data(), w.sh_gu, w.sh_down, tmp_a_, dgu_, T(1), dhn);
    }
  } else {
    if (!need_input_grad) return;
    const int64_t Id = c_.intermediate_size;
    swiglu_mlp_backward_input(N, H, Id, dx, a.gu.data(), w.mlp_gu, w.mlp_down, tmp_a_, dgu_, T(0), dhn);
  }

  // dx2 = dout + RMSNorm'(dhn2)
  rmsnorm_backward(dhn, a.x2.data(), w.post_norm, a.rstd2.data(), dx, N, H, true);

  // Attention: input gradient of hn, then of x.
  T* dattn = grow(tmp_a_, N * nH * dv);
  PhaseSeq ps;
  ps.next("b.attn_proj");
  gemm(false, false, N, nH * dv, H, T(1), dx, H, w.o_proj, nH * dv, T(0), dattn, nH * dv);
  T* dqb = grow(tmp_b_, N * nH * dq);
  T* dkv = grow(dgu_, N * nH * (dn + dv));
  T* dkpe = grow(tmp_c_, N * dr);
  const AttnDims dims{B_, S_, nH, dn, dr, dv, rope_.softmax_scale};
  ps.next("b.attn_core");
  attention_backward(dims, a.q.data(), a.kv.data(), a.kpe.data(), a.attn.data(), a.lse.data(), dattn, dqb, dkv, dkpe);
  rope_backward(dqb, N, S_, nH, nH * dq, dq, dn, dr, cos_.data(), sin_.data());
  ps.next("b.attn_proj");
  rope_backward(dkpe, N, S_, 1, dr, 0, 0, dr, cos_.data(), sin_.data());
  T* dcn = grow(tmp_a_, N * R);
  gemm(false, false, N, R, nH * (dn + dv), T(1), dkv, nH * (dn + dv), w.kv_b, R, T(0), dcn, R);
  T* dckv = grow(dhn_, N * (R + dr));
  rmsnorm_backward(dcn, a.ckv.data(), w.kv_a_norm, a.rstd_c.data(), dckv, N, R, false, R + dr, R + dr);
  for (int64_t n = 0; n < N; n++) std::memcpy(dckv + n * (R + dr) + R, dkpe + n * dr, sizeof(T) * dr);
  T* dh = grow(hn_, N * H);
  gemm(false, false, N, H, R + dr, T(1), dckv, R + dr, w.kv_a, H, T(0), dh, H);
  if (Rq > 0) {
    T* dqan = grow(ye_, N * Rq);
    gemm(false, false, N, Rq, nH * dq, T(1), dqb, nH * dq, w.q_b, Rq, T(0), dqan, Rq);
    T* dqa = grow(dye_, N * Rq);
    rmsnorm_backward(dqan, a.qa.data(), w.q_a_norm, a.rstd_qa.data(), dqa, N, Rq, false);
    gemm(false, false, N, H, Rq, T(1), dqa, Rq, w.q_a, H, T(1), dh, H);
  } else {
    gemm(false, false, N, H, nH * dq, T(1), dqb, nH * dq, w.q_proj, H, T(1), dh, H);
  }
  rmsnorm_backward(dh, x, w.in_norm, a.rstd1.data(), dx, N, H, true);
}

template <typename T>
LossSum CpuModel<T>::run(const ModelView<T>& w, const int32_t* tokens, const int32_t* labels, int64_t B, int64_t S,
                         bool backward, double grad_scale_per_position) {
  const int64_t L = c_.num_hidden_layers, H = c_.hidden_size, V = c_.vocab_size;
  B_ = B;
  S_ = S;
  N_ = B * S;
  const int64_t N = N_;
  if ((int64_t)cos_.size() != S * (c_.qk_rope_head_dim / 2)) rope_tables(rope_.inv_freq, rope_.attention_factor, S, cos_, sin_);

  // First layer whose experts have gradient accumulators: backward stops at its MLP.
  int64_t first = -1;
  if (backward) {
    for (int64_t l = 0; l < L && first < 0; l++) {
      const auto& lv = w.layers[l];
      for (size_t e = 0; e < lv.gex_gu.size(); e++)
        if (lv.gex_gu[e] || lv.gex_down[e]) first = l;
    }
    if (first < 0) backward = false;
  }

  xs_.resize((size_t)(L + 1));
  PhaseSeq ps;
  ps.next("f.embed");
  for (auto& x : xs_) x.resize((size_t)(N * H));
  embedding_forward(tokens, w.embed, xs_[0].data(), N, H);
  ps.stop();
  for (int64_t l = 0; l < L; l++) {
    const bool keep = backward && !recompute_ && l >= first;
    layer_forward(l, w.layers[l], xs_[l].data(), xs_[l + 1].data(), keep ? acts_[l] : scratch_acts_);
  }

  T* hf = grow(hf_, N * H);
  ps.next("head");
  rstd_f_.resize((size_t)N);
  rmsnorm_forward(xs_[L].data(), w.final_norm, hf, rstd_f_.data(), N, H, c_.rms_norm_eps);

  std::vector<int64_t> rows;
  std::vector<int32_t> targets;
  for (int64_t b = 0; b < B; b++)
    for (int64_t t = 0; t + 1 < S; t++) {
      const int32_t y = labels[b * S + t + 1];
      if (y != -100) {
        rows.push_back(b * S + t);
        targets.push_back(y);
      }
    }
  LossSum out;
  out.count = (int64_t)rows.size();
  T* dhf = nullptr;
  if (backward) {
    dhf = grow(dhf_, N * H);
    std::fill(dhf, dhf + N * H, T(0));
  }
  // Row blocks of ≤ 64M logits (256 MiB in fp32) bound the head's memory for any vocabulary while
  // keeping enough rows per block that packing lm_head (once per block) stays small next to the
  // GEMM: ~650 rows for DeepSeek-V2's 102400-token vocabulary.
  const int64_t chunk = std::max<int64_t>(16, std::min<int64_t>(2048, (int64_t(1) << 26) / std::max<int64_t>(V, 1)));
  for (int64_t c0 = 0; c0 < out.count; c0 += chunk) {
    const int64_t m = std::min(chunk, out.count - c0);
    T* rh = grow(rows_h_, m * H);
    for (int64_t r = 0; r < m; r++) std::memcpy(rh + r * H, hf + rows[c0 + r] * H, sizeof(T) * H);
    T* lg = grow(logits_, m * V);
    gemm(false, true, m, V, H, T(1), rh, H, w.lm_head, H, T(0), lg, V);
    out.sum += cross_entropy_block(lg, targets.data() + c0, m, V, backward ? (T)grad_scale_per_position : T(0));
    if (backward) {
      T* drh = grow(drows_h_, m * H);
      gemm(false, false, m, H, V, T(1), lg, V, w.lm_head, H, T(0), drh, H);
      for (int64_t r = 0; r < m; r++) {
        T* d = dhf + rows[c0 + r] * H;
        const T* s = drh + r * H;
        for (int64_t i = 0; i < H; i++) d[i] += s[i];
      }
    }
  }
  // A non-finite loss leaves the gradient accumulators untouched (the reference skips backward).
  if (!backward || out.count == 0 || !std::isfinite(out.sum)) {
    ps.stop();
    profile().report();
    return out;
  }

  T* dx = grow(dx2_, N * H);
  ps.next("b.final_norm");
  rmsnorm_backward(dhf, xs_[L].data(), w.final_norm, rstd_f_.data(), dx, N, H, false);
  ps.stop();
  for (int64_t l = L - 1; l >= first; l--) {
    LayerActs<T>& a = recompute_ ? scratch_acts_ : acts_[l];
    // Recomputing may overwrite xs_[l+1]: layer l+1's backward, its only reader, is done.
    if (recompute_) layer_forward(l, w.layers[l], xs_[l].data(), xs_[l + 1].data(), a);
    layer_backward(l, w.layers[l], xs_[l].data(), a, dx, l > first);
  }
  profile().report();
  return out;
}

template struct LayerActs<float>;
template struct LayerActs<double>;
template class CpuModel<float>;
template class CpuModel<double>;
template ModelView<float> make_view<float>(const ModelConfig&, ParamStore<float>&, ParamStore<float>*);
template ModelView<double> make_view<double>(const ModelConfig&, ParamStore<double>&, ParamStore<double>*);

}  // namespace connito
