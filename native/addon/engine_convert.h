// JS value <-> engine struct conversions (main thread only). Every parse error is a JsInputError
// whose message names the field, what it must be and what was given.
#pragma once

#include <napi.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "engine.h"
#include "model_config.h"

namespace connito {
namespace js {

class JsInputError : public std::runtime_error {
 public:
  JsInputError(std::string code, const std::string& msg) : std::runtime_error(msg), code(std::move(code)) {}
  std::string code;
};

// A short description of a JS value for error messages ("a string", "-3", "undefined", ...).
std::string describe(const Napi::Value& v);

ModelConfig parse_config(const Napi::Value& v);
AllowedExperts parse_allowed(const Napi::Value& v);
EngineOptions parse_engine_options(const Napi::Value& v);

// Tensors viewed in place; `keep` receives references that must outlive the async call.
std::vector<TensorIn> parse_tensors(const Napi::Value& v, const std::string& what,
                                    std::vector<Napi::Reference<Napi::Value>>& keep);
ExportFilter parse_export_filter(const Napi::Value& v);

struct Batch {
  std::vector<int32_t> tokens, labels;
  int64_t batch = 0, seq = 0;
};
Batch parse_batch(const Napi::Value& v, const std::string& what);

OptimizerStateIn parse_optimizer_state(const Napi::Value& v, std::vector<Napi::Reference<Napi::Value>>& keep);

// Optional non-negative integer field of an optional object (`fallback` when absent).
int64_t optional_int_field(const Napi::Value& obj, const char* field, const std::string& what, int64_t fallback,
                           int64_t min);

// Output tensors: Uint8Array views over external ArrayBuffers that own the bytes (no copy).
Napi::Array tensors_to_js(Napi::Env env, std::vector<TensorBytes>&& tensors);
Napi::Value shape_to_js(Napi::Env env, const std::vector<int64_t>& shape);

}  // namespace js
}  // namespace connito
