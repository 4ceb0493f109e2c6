// Parameter specs (names, shapes, order) and their storage and initialisation. See param_store.h.
#include "param_store.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <regex>

namespace connito {
namespace {

uint64_t splitmix64(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char ch : s) {
    h ^= ch;
    h *= 0x100000001b3ull;
  }
  return h;
}

struct SpecBuilder {
  std::vector<ParamSpec> specs;
  size_t next_block = 0;
  void add(const std::string& name, std::vector<int64_t> shape, bool norm = false, int64_t layer = -1,
           bool trainable = false, int64_t expert = -1) {
    ParamSpec s;
    s.name = name;
    s.shape = std::move(shape);
    s.numel = 1;
    for (int64_t d : s.shape) s.numel *= d;
    s.is_norm = norm;
    s.layer = layer;
    s.trainable = trainable;
    s.expert = expert;
    s.block = next_block++;
    s.offset = 0;
    specs.push_back(s);
  }
  // gate and up of one gated MLP share a block: gate rows first, then up rows.
  void add_gate_up(const std::string& prefix, int64_t width, int64_t hidden, int64_t layer) {
    add(prefix + "gate_proj.weight", {width, hidden}, false, layer);
    add(prefix + "up_proj.weight", {width, hidden}, false, layer);
    specs.back().block = specs[specs.size() - 2].block;
    specs.back().offset = width * hidden;
    next_block--;
  }
};

}  // namespace

std::vector<ParamSpec> build_param_specs(const ModelConfig& c, const AllowedExperts& allowed) {
  SpecBuilder b;
  const int64_t H = c.hidden_size, nH = c.num_attention_heads;
  b.add("model.embed_tokens.weight", {c.vocab_size, H});
  for (int64_t l = 0; l < c.num_hidden_layers; l++) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    if (c.q_lora_rank > 0) {
      b.add(p + "self_attn.q_a_proj.weight", {c.q_lora_rank, H}, false, l);
      b.add(p + "self_attn.q_a_layernorm.weight", {c.q_lora_rank}, true, l);
      b.add(p + "self_attn.q_b_proj.weight", {nH * c.qk_head_dim(), c.q_lora_rank}, false, l);
    } else {
      b.add(p + "self_attn.q_proj.weight", {nH * c.qk_head_dim(), H}, false, l);
    }
    b.add(p + "self_attn.kv_a_proj_with_mqa.weight", {c.kv_lora_rank + c.qk_rope_head_dim, H}, false, l);
    b.add(p + "self_attn.kv_a_layernorm.weight", {c.kv_lora_rank}, true, l);
    b.add(p + "self_attn.kv_b_proj.weight", {nH * (c.qk_nope_head_dim + c.v_head_dim), c.kv_lora_rank}, false, l);
    b.add(p + "self_attn.o_proj.weight", {H, nH * c.v_head_dim}, false, l);
    if (c.is_moe_layer(l)) {
      const int64_t I = c.moe_intermediate_size;
      auto it = allowed.find(l);
      if (it != allowed.end()) {
        for (int64_t e : it->second) {
          const std::string ep = p + "mlp.experts." + std::to_string(e) + ".";
          b.add(ep + "gate_up_proj", {2 * I, H}, false, l, true, e);
          b.add(ep + "down_proj", {H, I}, false, l, true, e);
        }
      }
      b.add(p + "mlp.gate.weight", {c.n_routed_experts, H}, false, l);
      if (c.n_shared_experts > 0) {
        const int64_t S = I * c.n_shared_experts;
        b.add_gate_up(p + "mlp.shared_experts.", S, H, l);
        b.add(p + "mlp.shared_experts.down_proj.weight", {H, S}, false, l);
      }
    } else {
      b.add_gate_up(p + "mlp.", c.intermediate_size, H, l);
      b.add(p + "mlp.down_proj.weight", {H, c.intermediate_size}, false, l);
    }
    b.add(p + "input_layernorm.weight", {H}, true, l);
    b.add(p + "post_attention_layernorm.weight", {H}, true, l);
  }
  b.add("model.norm.weight", {H}, true);
  b.add("lm_head.weight", {c.vocab_size, H});
  return b.specs;
}

template <typename T>
void allocate_store(const std::vector<ParamSpec>& specs, ParamStore<T>& store) {
  store.specs = specs;
  store.index.clear();
  size_t nblocks = 0;
  for (const auto& s : specs) nblocks = std::max(nblocks, s.block + 1);
  std::vector<int64_t> sizes(nblocks, 0);
  for (size_t i = 0; i < specs.size(); i++) {
    store.index[specs[i].name] = i;
    sizes[specs[i].block] = std::max(sizes[specs[i].block], specs[i].offset + specs[i].numel);
  }
  store.blocks.clear();
  store.blocks.resize(nblocks);
  for (size_t b = 0; b < nblocks; b++) store.blocks[b].assign((size_t)sizes[b], T(0));
}

template <typename T>
void init_store(ParamStore<T>& store, uint64_t seed, double std) {
  for (size_t i = 0; i < store.specs.size(); i++) {
    const ParamSpec& s = store.specs[i];
    T* d = store.data(i);
    if (s.is_norm) {
      for (int64_t j = 0; j < s.numel; j++) d[j] = T(1);
      continue;
    }
    const uint64_t base = seed ^ fnv1a(s.name);
    const int64_t chunk = 1 << 16;
    const int64_t nchunks = (s.numel + chunk - 1) / chunk;
#pragma omp parallel for schedule(static) if (nchunks > 1)
    for (int64_t ci = 0; ci < nchunks; ci++) {
      uint64_t st = base + 0x632be59bd9b4e019ull * (uint64_t)(ci + 1);
      const int64_t a = ci * chunk, e = std::min(s.numel, a + chunk);
      for (int64_t j = a; j < e; j += 2) {
        // Box–Muller on two 53-bit uniforms in (0, 1].
        double u1 = ((splitmix64(st) >> 11) + 1) * (1.0 / 9007199254740992.0);
        double u2 = (splitmix64(st) >> 11) * (1.0 / 9007199254740992.0);
        double r = std::sqrt(-2.0 * std::log(u1));
        d[j] = (T)(std * r * std::cos(6.283185307179586 * u2));
        if (j + 1 < e) d[j + 1] = (T)(std * r * std::sin(6.283185307179586 * u2));
      }
    }
  }
}

bool parse_expert_key(const std::string& name, int64_t& layer, int64_t& expert, std::string& rest) {
  static const std::regex re(R"(^model\.layers\.(\d{1,6})\.mlp\.experts\.(\d{1,6})\.(.+)$)");
  std::smatch m;
  if (!std::regex_match(name, m, re)) return false;
  layer = std::stoll(m[1].str());
  expert = std::stoll(m[2].str());
  rest = m[3].str();
  return true;
}

template void allocate_store<float>(const std::vector<ParamSpec>&, ParamStore<float>&);
template void allocate_store<double>(const std::vector<ParamSpec>&, ParamStore<double>&);
template void init_store<float>(ParamStore<float>&, uint64_t, double);
template void init_store<double>(ParamStore<double>&, uint64_t, double);

}  // namespace connito
