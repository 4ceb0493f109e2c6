// Derived model quantities and validation of the parsed config / expert selection.
#include "model_config.h"

#include <algorithm>
#include <cmath>
#include <set>

namespace connito {

RopeTables derive_rope(const ModelConfig& c) {
  RopeTables t;
  const int64_t dim = c.qk_rope_head_dim;
  const double base = c.rope_theta;
  const int64_t half = dim / 2;
  t.inv_freq.resize((size_t)half);
  t.softmax_scale = 1.0 / std::sqrt((double)c.qk_head_dim());
  // pos_freqs = base ** (arange(0, dim, 2).float() / dim), in float32 as transformers does.
  std::vector<double> pos_freqs((size_t)half);
  for (int64_t i = 0; i < half; i++) pos_freqs[i] = (double)std::pow((float)base, (float)(2 * i) / (float)dim);
  if (c.rope.type != "yarn") {
    for (int64_t i = 0; i < half; i++) t.inv_freq[i] = (double)(1.0f / (float)pos_freqs[i]);
    t.attention_factor = 1.0;
    return t;
  }
  const RopeScaling& r = c.rope;
  const double factor = r.factor;
  auto get_mscale = [](double scale, double m) { return scale <= 1.0 ? 1.0 : 0.1 * m * std::log(scale) + 1.0; };
  if (r.attention_factor > 0) {
    t.attention_factor = r.attention_factor;
  } else if (r.mscale != 0 && r.mscale_all_dim != 0) {
    t.attention_factor = get_mscale(factor, r.mscale) / get_mscale(factor, r.mscale_all_dim);
  } else {
    t.attention_factor = get_mscale(factor, 1.0);
  }
  const double orig =
      r.original_max_position_embeddings > 0 ? r.original_max_position_embeddings : (double)c.max_position_embeddings;
  auto correction_dim = [&](double rot) {
    return ((double)dim * std::log(orig / (rot * 2.0 * 3.14159265358979323846))) / (2.0 * std::log(base));
  };
  double low = correction_dim(r.beta_fast), high = correction_dim(r.beta_slow);
  if (r.truncate) {
    low = std::floor(low);
    high = std::ceil(high);
  }
  low = std::max(low, 0.0);
  high = std::min(high, (double)(dim - 1));
  if (low == high) high += 0.001;
  for (int64_t i = 0; i < half; i++) {
    const float ramp = std::min(1.0f, std::max(0.0f, (float)(((double)i - low) / (high - low))));
    const float extra = 1.0f - ramp;
    const float inv_extra = 1.0f / (float)pos_freqs[i];
    const float inv_inter = 1.0f / ((float)factor * (float)pos_freqs[i]);
    t.inv_freq[i] = (double)(inv_inter * (1.0f - extra) + inv_extra * extra);
  }
  return t;
}

std::string validate_config(const ModelConfig& c) {
  auto pos = [](int64_t v) { return v > 0; };
  if (!pos(c.vocab_size)) return "vocab_size must be a positive integer";
  if (!pos(c.hidden_size)) return "hidden_size must be a positive integer";
  if (!pos(c.num_hidden_layers)) return "num_hidden_layers must be a positive integer";
  if (!pos(c.num_attention_heads)) return "num_attention_heads must be a positive integer";
  if (!pos(c.kv_lora_rank)) return "kv_lora_rank must be a positive integer";
  if (c.q_lora_rank < 0) return "q_lora_rank must be null or a positive integer";
  if (!pos(c.qk_nope_head_dim)) return "qk_nope_head_dim must be a positive integer";
  if (!pos(c.qk_rope_head_dim) || c.qk_rope_head_dim % 2 != 0)
    return "qk_rope_head_dim must be a positive even integer (RoPE rotates pairs)";
  if (!pos(c.v_head_dim)) return "v_head_dim must be a positive integer";
  if (c.first_k_dense_replace > 0 && !pos(c.intermediate_size))
    return "intermediate_size must be a positive integer (dense layers exist)";
  if (c.n_routed_experts < 0) return "n_routed_experts must be >= 0";
  if (c.n_routed_experts > 0) {
    if (!pos(c.moe_intermediate_size)) return "moe_intermediate_size must be a positive integer";
    if (c.num_experts_per_tok < 1 || c.num_experts_per_tok > c.n_routed_experts)
      return "num_experts_per_tok must be in [1, n_routed_experts]";
    if (c.n_shared_experts < 0) return "n_shared_experts must be null or >= 0";
  }
  for (int64_t l = 0; l < c.num_hidden_layers; l++)
    if (!c.is_moe_layer(l) && !pos(c.intermediate_size))
      return "intermediate_size must be a positive integer (layer " + std::to_string(l) + " is dense)";
  if (!(c.rms_norm_eps > 0)) return "rms_norm_eps must be > 0";
  if (!pos(c.max_position_embeddings)) return "max_position_embeddings must be a positive integer";
  if (!(c.rope_theta > 1)) return "rope_theta must be > 1";
  if (c.rope.type == "yarn" && !(c.rope.factor > 0)) return "rope_scaling.factor must be > 0";
  if (!(c.initializer_range >= 0)) return "initializer_range must be >= 0";
  if (!std::isfinite(c.routed_scaling_factor)) return "routed_scaling_factor must be finite";
  return "";
}

std::string validate_allowed(const ModelConfig& c, AllowedExperts& allowed) {
  for (auto& [layer, ids] : allowed) {
    const std::string where = "allowedExperts[" + std::to_string(layer) + "]";
    if (layer < 0 || layer >= c.num_hidden_layers)
      return where + ": layer " + std::to_string(layer) + " does not exist (num_hidden_layers is " +
             std::to_string(c.num_hidden_layers) + ")";
    if (!c.is_moe_layer(layer)) return where + ": layer " + std::to_string(layer) + " is a dense layer, not MoE";
    std::set<int64_t> seen;
    for (int64_t e : ids) {
      if (e < 0 || e >= c.n_routed_experts)
        return where + ": expert id " + std::to_string(e) + " is outside [0, " + std::to_string(c.n_routed_experts) +
               ")";
      if (!seen.insert(e).second) return where + ": expert id " + std::to_string(e) + " is listed twice";
    }
    std::sort(ids.begin(), ids.end());
  }
  for (int64_t l = 0; l < c.num_hidden_layers; l++) {
    if (!c.is_moe_layer(l)) continue;
    auto it = allowed.find(l);
    const int64_t n = it == allowed.end() ? 0 : (int64_t)it->second.size();
    if (n < c.num_experts_per_tok)
      return "allowedExperts[" + std::to_string(l) + "]: MoE layer " + std::to_string(l) + " needs at least " +
             std::to_string(c.num_experts_per_tok) + " allowed expert(s) (num_experts_per_tok), got " +
             std::to_string(n) + " — with fewer, top-k would pick masked (−1e4) experts";
  }
  return "";
}

}  // namespace connito
