// The miner model's parameters under their reference state-dict names (PROTOCOL §9.4), in
// state-dict order, with their storage. Only the allowed routed experts exist. The gate/up weights
// of a gated MLP (dense MLP, shared experts) share one [gate; up] allocation so that one GEMM
// computes both halves; a routed expert's gate_up_proj already has that layout.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "model_config.h"

namespace connito {

struct ParamSpec {
  std::string name;
  std::vector<int64_t> shape;
  int64_t numel = 0;
  bool trainable = false;  // routed experts of the allowed set
  bool is_norm = false;    // initialised to ones
  int64_t layer = -1;
  int64_t expert = -1;  // org id for routed-expert tensors
  size_t block = 0;     // storage block
  int64_t offset = 0;   // element offset inside the block
};

template <typename T>
struct ParamStore {
  std::vector<ParamSpec> specs;
  std::map<std::string, size_t> index;
  std::vector<std::vector<T>> blocks;

  T* data(size_t i) { return blocks[specs[i].block].data() + specs[i].offset; }
  const T* data(size_t i) const { return blocks[specs[i].block].data() + specs[i].offset; }
  T* find(const std::string& name) {
    auto it = index.find(name);
    return it == index.end() ? nullptr : data(it->second);
  }
  size_t bytes() const {
    size_t b = 0;
    for (const auto& v : blocks) b += v.size() * sizeof(T);
    return b;
  }
};

// The spec list for a config and expert selection (no storage).
std::vector<ParamSpec> build_param_specs(const ModelConfig& c, const AllowedExperts& allowed);

// Allocates storage for `specs` (merged gate/up pairs share a block).
template <typename T>
void allocate_store(const std::vector<ParamSpec>& specs, ParamStore<T>& store);

// Deterministic init like the reference model built from its config: norms = 1, everything else
// normal(0, std). Each tensor's stream depends only on (seed, name), not on order or threads.
template <typename T>
void init_store(ParamStore<T>& store, uint64_t seed, double std);

// Parses "model.layers.<L>.mlp.experts.<E>.<rest>" (PROTOCOL §8.3, but anchored); false otherwise.
bool parse_expert_key(const std::string& name, int64_t& layer, int64_t& expert, std::string& rest);

}  // namespace connito
