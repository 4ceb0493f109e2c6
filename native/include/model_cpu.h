// The DeepSeek-V2 partial-MoE model on the CPU: forward, loss and the backward pass that the
// trainable routed experts need. Templated on the scalar type (float: engine; double: gradient
// checks). No weights are owned here: the caller passes views into its ParamStore.
#pragma once

#include <cstdint>
#include <vector>

#include "cpu_ops.h"
#include "model_config.h"
#include "param_store.h"

namespace connito {

template <typename T>
struct LayerView {
  bool moe = false;
  const T *in_norm = nullptr, *post_norm = nullptr;
  const T *q_proj = nullptr, *q_a = nullptr, *q_a_norm = nullptr, *q_b = nullptr;
  const T *kv_a = nullptr, *kv_a_norm = nullptr, *kv_b = nullptr, *o_proj = nullptr;
  const T *mlp_gu = nullptr, *mlp_down = nullptr;  // dense: [2·Id, H] (gate; up), [H, Id]
  const T* router = nullptr;                       // [E, H]
  const T *sh_gu = nullptr, *sh_down = nullptr;    // shared experts: [2·S, H], [H, S]
  std::vector<int64_t> experts;                    // allowed org ids, ascending
  std::vector<const T*> ex_gu, ex_down;            // per local expert: [2I, H], [H, I]
  std::vector<T*> gex_gu, gex_down;                // gradient accumulators (nullptr: none)
};

template <typename T>
struct ModelView {
  const T *embed = nullptr, *final_norm = nullptr, *lm_head = nullptr;
  std::vector<LayerView<T>> layers;
};

// Builds the per-layer pointer view of a store; `grads` (same specs, trainable tensors only used)
// may be null.
template <typename T>
ModelView<T> make_view(const ModelConfig& c, ParamStore<T>& w, ParamStore<T>* grads);

// Saved activations of one layer (what its backward needs). Buffer layouts in model.cc.
template <typename T>
struct LayerActs {
  std::vector<T> rstd1, qa, rstd_qa, q, ckv, rstd_c, kv, kpe, lse, attn, x2, rstd2, hn2;
  std::vector<T> gu;     // dense MLP [N, 2·Id]
  std::vector<T> probs;  // router softmax [N, E]
  Routing routing;
  std::vector<std::vector<int64_t>> ex_slots;  // per local expert: slot ids n·K + k, ascending
  std::vector<std::vector<T>> ex_gu;           // per local expert: [n_e, 2I]
  std::vector<T> sh_gu;                        // shared experts [N, 2·S]
  size_t bytes() const;
};

struct LossSum {
  double sum = 0.0;    // Σ CE over the counted positions
  int64_t count = 0;   // positions with a label != -100 (after the next-token shift)
};

template <typename T>
class CpuModel {
 public:
  CpuModel(const ModelConfig& c, bool recompute);

  // Forward and loss. With `backward`, also the backward pass down to the first layer that has
  // trainable experts, adding ∂(grad_scale·Σ CE)/∂W into the view's gradient accumulators, where
  // grad_scale is passed as the per-position factor (e.g. loss_scale / count).
  // tokens/labels: [B·S]; labels are unshifted (HF convention, −100 = ignore): position t of a
  // sequence is scored against labels[t+1].
  LossSum run(const ModelView<T>& w, const int32_t* tokens, const int32_t* labels, int64_t B, int64_t S,
              bool backward, double grad_scale_per_position);

  // Counts the positions run() will score.
  static int64_t count_targets(const int32_t* labels, int64_t B, int64_t S);

  size_t workspace_bytes() const;

 private:
  void layer_forward(int64_t l, const LayerView<T>& w, const T* x, T* out, LayerActs<T>& a);
  // dx: on entry ∂L/∂(layer output), on exit ∂L/∂(layer input) when need_input_grad.
  void layer_backward(int64_t l, const LayerView<T>& w, const T* x, LayerActs<T>& a, T* dx, bool need_input_grad);

  ModelConfig c_;
  RopeTables rope_;
  bool recompute_;
  int64_t B_ = 0, S_ = 0, N_ = 0;
  std::vector<T> cos_, sin_;
  std::vector<std::vector<T>> xs_;       // residual stream: xs_[l] = input of layer l, xs_[L] = final
  std::vector<LayerActs<T>> acts_;       // per layer (unused when recomputing)
  LayerActs<T> scratch_acts_;            // recompute / no-save forward
  // Temporaries reused across layers.
  std::vector<T> hn_, tmp_a_, tmp_b_, tmp_c_, dx2_, dhn_, dgu_, logits_, rows_h_, drows_h_, xe_, ye_, dye_;
  std::vector<T> hf_, rstd_f_, dhf_, dweight_;
};

}  // namespace connito
