// The DeepSeek-V2 family hyper-parameters the engine needs (from an HF config.json), the derived
// quantities (RoPE frequencies, softmax scale), and the miner's expert selection. Pure C++.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace connito {

struct RopeScaling {
  // "none" (plain RoPE) or "yarn". Other HF rope types are rejected when the config is parsed.
  std::string type = "none";
  double factor = 1.0;
  double original_max_position_embeddings = 0;  // 0 -> max_position_embeddings
  double beta_fast = 32, beta_slow = 1;
  double mscale = 0, mscale_all_dim = 0;  // 0 = absent
  double attention_factor = 0;            // 0 = absent (derived)
  bool truncate = true;
};

struct ModelConfig {
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t q_lora_rank = 0;  // 0 = plain q_proj (config null)
  int64_t kv_lora_rank = 0;
  int64_t qk_nope_head_dim = 0;
  int64_t qk_rope_head_dim = 0;
  int64_t v_head_dim = 0;
  int64_t intermediate_size = 0;      // dense MLP width
  int64_t moe_intermediate_size = 0;  // one routed expert's width I
  int64_t n_routed_experts = 0;       // 0 = no MoE layers at all
  int64_t n_shared_experts = 0;       // shared MLP width = I · n_shared_experts (0 = none)
  int64_t num_experts_per_tok = 1;    // top-k
  int64_t first_k_dense_replace = 0;
  int64_t moe_layer_freq = 1;
  double routed_scaling_factor = 1.0;
  double rms_norm_eps = 1e-6;
  int64_t max_position_embeddings = 0;
  double rope_theta = 10000.0;
  RopeScaling rope;
  double initializer_range = 0.02;

  int64_t qk_head_dim() const { return qk_nope_head_dim + qk_rope_head_dim; }
  bool is_moe_layer(int64_t l) const {
    return n_routed_experts > 0 && l >= first_k_dense_replace && (moe_layer_freq <= 1 || l % moe_layer_freq == 0);
  }
};

// transformers' DeepseekV2 builds q_a_layernorm / kv_a_layernorm with the default eps, not
// config.rms_norm_eps.
constexpr double kLoraNormEps = 1e-6;

// RoPE as transformers computes it for DeepseekV2 (rotary dim = qk_rope_head_dim):
//   inv_freq[i]  YaRN blend of θ^(−2i/d) and θ^(−2i/d)/factor over the correction range
//                computed from original_max_position_embeddings, beta_fast, beta_slow;
//   attention_factor  multiplies cos and sin (hence both q_pe and k_pe):
//                get_mscale(factor, mscale)/get_mscale(factor, mscale_all_dim) when both are set,
//                else get_mscale(factor) = 0.1·ln(factor)+1 (1 when factor ≤ 1);
//   softmax_scale = (qk_nope_head_dim + qk_rope_head_dim)^−½ (no mscale² on the scores).
// The factor is taken from the config as given (callers pass Connito's overridden config).
struct RopeTables {
  std::vector<double> inv_freq;  // qk_rope_head_dim / 2
  double attention_factor = 1.0;
  double softmax_scale = 1.0;
};
RopeTables derive_rope(const ModelConfig& c);

// Validation of a parsed config; returns "" or an error naming the field.
std::string validate_config(const ModelConfig& c);

// layer -> sorted org expert ids this engine holds and trains.
using AllowedExperts = std::map<int64_t, std::vector<int64_t>>;
std::string validate_allowed(const ModelConfig& c, AllowedExperts& allowed);

}  // namespace connito
