// JS <-> engine conversions (see engine_convert.h). Runs on the JS thread only.
#include "engine_convert.h"

#include <cmath>
#include <sstream>

namespace connito {
namespace js {
namespace {

JsInputError config_error(const std::string& msg) { return JsInputError("CNM_ERR_ENGINE_CONFIG", msg); }
JsInputError input_error(const std::string& msg) { return JsInputError("CNM_ERR_ENGINE_INPUT", msg); }

bool is_integer(double d) { return std::isfinite(d) && std::floor(d) == d && std::fabs(d) <= 9007199254740991.0; }

Napi::Object require_object(const Napi::Value& v, const std::string& what, bool config = true) {
  if (!v.IsObject() || v.IsArray()) {
    std::string m = what + ": expected an object, got " + describe(v);
    throw config ? config_error(m) : input_error(m);
  }
  return v.As<Napi::Object>();
}

// Reads an HF config field. `nullable`: null/absent -> fallback.
int64_t cfg_int(const Napi::Object& o, const char* f, bool required, int64_t fallback, int64_t min = 0) {
  Napi::Value v = o.Get(f);
  if (v.IsUndefined() || v.IsNull()) {
    if (required) throw config_error(std::string("config.") + f + ": required field is missing");
    return fallback;
  }
  if (!v.IsNumber() || !is_integer(v.As<Napi::Number>().DoubleValue()) || v.As<Napi::Number>().DoubleValue() < min)
    throw config_error(std::string("config.") + f + ": expected an integer >= " + std::to_string(min) + ", got " +
                       describe(v));
  return (int64_t)v.As<Napi::Number>().DoubleValue();
}

double cfg_num(const Napi::Object& o, const char* f, double fallback, const std::string& prefix = "config.") {
  Napi::Value v = o.Get(f);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsNumber() || !std::isfinite(v.As<Napi::Number>().DoubleValue()))
    throw config_error(prefix + f + ": expected a finite number, got " + describe(v));
  return v.As<Napi::Number>().DoubleValue();
}

void cfg_expect_string(const Napi::Object& o, const char* f, const std::vector<std::string>& allowed) {
  Napi::Value v = o.Get(f);
  if (v.IsUndefined() || v.IsNull()) return;
  std::string got = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
  for (const auto& a : allowed)
    if (v.IsString() && got == a) return;
  std::string want;
  for (size_t i = 0; i < allowed.size(); i++) want += (i ? " or '" : "'") + allowed[i] + "'";
  throw config_error(std::string("config.") + f + ": the engine supports " + want + ", got " + describe(v));
}

void cfg_expect_false(const Napi::Object& o, const char* f) {
  Napi::Value v = o.Get(f);
  if (v.IsUndefined() || v.IsNull()) return;
  if (v.IsBoolean() && !v.As<Napi::Boolean>().Value()) return;
  throw config_error(std::string("config.") + f + ": the engine supports only false, got " + describe(v));
}

std::string str_field(const Napi::Object& o, const char* f, const std::string& what, const std::string& fallback,
                      bool config) {
  Napi::Value v = o.Get(f);
  if (v.IsUndefined()) return fallback;
  if (!v.IsString()) {
    std::string m = what + "." + f + ": expected a string, got " + describe(v);
    throw config ? config_error(m) : input_error(m);
  }
  return v.As<Napi::String>().Utf8Value();
}

double num_field(const Napi::Object& o, const char* f, const std::string& what, bool required, double fallback) {
  Napi::Value v = o.Get(f);
  if (v.IsUndefined()) {
    if (required) throw config_error(what + "." + f + ": required field is missing");
    return fallback;
  }
  if (!v.IsNumber()) throw config_error(what + "." + f + ": expected a number, got " + describe(v));
  return v.As<Napi::Number>().DoubleValue();
}

std::vector<int64_t> parse_shape(const Napi::Value& v, const std::string& what) {
  if (!v.IsArray()) throw input_error(what + ".shape: expected an array of integers, got " + describe(v));
  Napi::Array a = v.As<Napi::Array>();
  std::vector<int64_t> s;
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value d = a.Get(i);
    if (!d.IsNumber() || !is_integer(d.As<Napi::Number>().DoubleValue()) || d.As<Napi::Number>().DoubleValue() < 0)
      throw input_error(what + ".shape[" + std::to_string(i) + "]: expected an integer >= 0, got " + describe(d));
    s.push_back((int64_t)d.As<Napi::Number>().DoubleValue());
  }
  return s;
}

}  // namespace

std::string describe(const Napi::Value& v) {
  if (v.IsUndefined()) return "undefined";
  if (v.IsNull()) return "null";
  if (v.IsBoolean()) return v.As<Napi::Boolean>().Value() ? "true" : "false";
  if (v.IsNumber()) {
    std::ostringstream s;
    s << v.As<Napi::Number>().DoubleValue();
    return s.str();
  }
  if (v.IsString()) {
    std::string s = v.As<Napi::String>().Utf8Value();
    if (s.size() > 40) s = s.substr(0, 40) + "…";
    return "'" + s + "'";
  }
  if (v.IsTypedArray()) {
    switch (v.As<Napi::TypedArray>().TypedArrayType()) {
      case napi_int8_array: return "an Int8Array";
      case napi_uint8_array: return "a Uint8Array";
      case napi_uint8_clamped_array: return "a Uint8ClampedArray";
      case napi_int16_array: return "an Int16Array";
      case napi_uint16_array: return "a Uint16Array";
      case napi_int32_array: return "an Int32Array";
      case napi_uint32_array: return "a Uint32Array";
      case napi_float32_array: return "a Float32Array";
      case napi_float64_array: return "a Float64Array";
      default: return "a typed array";
    }
  }
  if (v.IsArray()) return "an array";
  if (v.IsFunction()) return "a function";
  if (v.IsObject()) return "an object";
  return "a value";
}

ModelConfig parse_config(const Napi::Value& v) {
  Napi::Object o = require_object(v, "config");
  ModelConfig c;
  c.vocab_size = cfg_int(o, "vocab_size", true, 0, 1);
  c.hidden_size = cfg_int(o, "hidden_size", true, 0, 1);
  c.num_hidden_layers = cfg_int(o, "num_hidden_layers", true, 0, 1);
  c.num_attention_heads = cfg_int(o, "num_attention_heads", true, 0, 1);
  c.q_lora_rank = cfg_int(o, "q_lora_rank", false, 0, 1);
  c.kv_lora_rank = cfg_int(o, "kv_lora_rank", true, 0, 1);
  c.qk_nope_head_dim = cfg_int(o, "qk_nope_head_dim", true, 0, 1);
  c.qk_rope_head_dim = cfg_int(o, "qk_rope_head_dim", true, 0, 2);
  c.v_head_dim = cfg_int(o, "v_head_dim", true, 0, 1);
  c.intermediate_size = cfg_int(o, "intermediate_size", false, 0, 1);
  c.moe_intermediate_size = cfg_int(o, "moe_intermediate_size", false, 0, 1);
  c.n_routed_experts = cfg_int(o, "n_routed_experts", false, 0, 1);
  c.n_shared_experts = cfg_int(o, "n_shared_experts", false, 0, 0);
  c.num_experts_per_tok = cfg_int(o, "num_experts_per_tok", false, 1, 1);
  c.first_k_dense_replace = cfg_int(o, "first_k_dense_replace", false, 0, 0);
  c.moe_layer_freq = cfg_int(o, "moe_layer_freq", false, 1, 1);
  c.routed_scaling_factor = cfg_num(o, "routed_scaling_factor", 1.0);
  c.rms_norm_eps = cfg_num(o, "rms_norm_eps", 1e-6);
  c.max_position_embeddings = cfg_int(o, "max_position_embeddings", true, 0, 1);
  c.initializer_range = cfg_num(o, "initializer_range", 0.02);
  cfg_expect_string(o, "hidden_act", {"silu"});
  cfg_expect_string(o, "scoring_func", {"softmax"});
  cfg_expect_string(o, "topk_method", {"greedy"});
  cfg_expect_false(o, "tie_word_embeddings");
  cfg_expect_false(o, "attention_bias");
  cfg_expect_false(o, "mlp_bias");

  // RoPE: transformers < 5 writes rope_theta + rope_scaling, 5.x folds both into rope_parameters.
  Napi::Value rp = o.Get("rope_parameters");
  Napi::Value rs = o.Get("rope_scaling");
  Napi::Object scaling;
  std::string prefix = "config.rope_scaling.";
  bool have_scaling = false;
  if (rs.IsObject() && !rs.IsArray()) {
    scaling = rs.As<Napi::Object>();
    have_scaling = true;
  } else if (!rs.IsUndefined() && !rs.IsNull()) {
    throw config_error("config.rope_scaling: expected an object or null, got " + describe(rs));
  } else if (rp.IsObject() && !rp.IsArray()) {
    scaling = rp.As<Napi::Object>();
    have_scaling = true;
    prefix = "config.rope_parameters.";
  }
  c.rope_theta = cfg_num(o, "rope_theta", 0.0);
  if (c.rope_theta == 0.0 && rp.IsObject() && !rp.IsArray()) c.rope_theta = cfg_num(rp.As<Napi::Object>(), "rope_theta", 0.0, "config.rope_parameters.");
  if (c.rope_theta == 0.0) c.rope_theta = 10000.0;
  if (have_scaling) {
    std::string type;
    Napi::Value t = scaling.Get("type");
    if (t.IsUndefined() || t.IsNull()) t = scaling.Get("rope_type");
    if (t.IsString()) type = t.As<Napi::String>().Utf8Value();
    if (type == "yarn") {
      c.rope.type = "yarn";
      c.rope.factor = cfg_num(scaling, "factor", 1.0, prefix);
      c.rope.original_max_position_embeddings = cfg_num(scaling, "original_max_position_embeddings", 0.0, prefix);
      c.rope.beta_fast = cfg_num(scaling, "beta_fast", 0.0, prefix);
      c.rope.beta_slow = cfg_num(scaling, "beta_slow", 0.0, prefix);
      if (c.rope.beta_fast == 0.0) c.rope.beta_fast = 32;  // `or 32` in transformers
      if (c.rope.beta_slow == 0.0) c.rope.beta_slow = 1;
      c.rope.mscale = cfg_num(scaling, "mscale", 0.0, prefix);
      c.rope.mscale_all_dim = cfg_num(scaling, "mscale_all_dim", 0.0, prefix);
      c.rope.attention_factor = cfg_num(scaling, "attention_factor", 0.0, prefix);
      Napi::Value tr = scaling.Get("truncate");
      c.rope.truncate = !(tr.IsBoolean() && !tr.As<Napi::Boolean>().Value());
    } else if (type == "default" || type.empty()) {
      c.rope.type = "none";
    } else {
      throw config_error(prefix + "type: the engine supports 'yarn' or 'default' RoPE, got " + describe(t));
    }
  }
  return c;
}

AllowedExperts parse_allowed(const Napi::Value& v) {
  Napi::Object o = require_object(v, "allowedExperts");
  AllowedExperts out;
  Napi::Array keys = o.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); i++) {
    std::string k = keys.Get(i).ToString().Utf8Value();
    char* end = nullptr;
    long long layer = std::strtoll(k.c_str(), &end, 10);
    if (k.empty() || *end != '\0' || layer < 0)
      throw config_error("allowedExperts: key '" + k + "' is not a layer index (expected a decimal integer >= 0)");
    Napi::Value arr = o.Get(k);
    if (!arr.IsArray())
      throw config_error("allowedExperts[" + k + "]: expected an array of expert ids, got " + describe(arr));
    Napi::Array a = arr.As<Napi::Array>();
    std::vector<int64_t> ids;
    for (uint32_t j = 0; j < a.Length(); j++) {
      Napi::Value e = a.Get(j);
      if (!e.IsNumber() || !is_integer(e.As<Napi::Number>().DoubleValue()))
        throw config_error("allowedExperts[" + k + "][" + std::to_string(j) + "]: expected an integer expert id, got " +
                           describe(e));
      ids.push_back((int64_t)e.As<Napi::Number>().DoubleValue());
    }
    out[layer] = ids;
  }
  return out;
}

EngineOptions parse_engine_options(const Napi::Value& v) {
  Napi::Object o = require_object(v, "createEngine options");
  EngineOptions e;
  e.config = parse_config(o.Get("config"));
  e.allowed = parse_allowed(o.Get("allowedExperts"));
  e.backend = str_field(o, "backend", "options", "auto", true);
  e.precision = str_field(o, "precision", "options", "fp32", true);
  Napi::Value th = o.Get("threads");
  if (!th.IsUndefined()) {
    if (!th.IsNumber() || !is_integer(th.As<Napi::Number>().DoubleValue()) || th.As<Napi::Number>().DoubleValue() < 0)
      throw config_error("options.threads: expected an integer >= 0, got " + describe(th));
    e.threads = (int)th.As<Napi::Number>().DoubleValue();
  }
  Napi::Value rc = o.Get("recompute");
  if (!rc.IsUndefined()) {
    if (!rc.IsBoolean()) throw config_error("options.recompute: expected a boolean, got " + describe(rc));
    e.recompute = rc.As<Napi::Boolean>().Value();
  }
  Napi::Object op = require_object(o.Get("optimizer"), "options.optimizer");
  e.opt.lr = num_field(op, "lr", "optimizer", true, 0);
  Napi::Value betas = op.Get("betas");
  if (!betas.IsUndefined()) {
    if (!betas.IsArray() || betas.As<Napi::Array>().Length() != 2)
      throw config_error("optimizer.betas: expected [beta1, beta2], got " + describe(betas));
    Napi::Value b1 = betas.As<Napi::Array>().Get(0u), b2 = betas.As<Napi::Array>().Get(1u);
    if (!b1.IsNumber() || !b2.IsNumber()) throw config_error("optimizer.betas: expected two numbers");
    e.opt.beta1 = b1.As<Napi::Number>().DoubleValue();
    e.opt.beta2 = b2.As<Napi::Number>().DoubleValue();
  }
  e.opt.eps = num_field(op, "eps", "optimizer", false, 1e-8);
  e.opt.weight_decay = num_field(op, "weightDecay", "optimizer", false, 0.1);
  e.opt.max_grad_norm = num_field(op, "maxGradNorm", "optimizer", false, 1.0);
  Napi::Object sc = require_object(o.Get("schedule"), "options.schedule");
  double warm = num_field(sc, "warmupSteps", "schedule", true, 0), total = num_field(sc, "totalSteps", "schedule", true, 1);
  if (!is_integer(warm) || warm < 0) throw config_error("schedule.warmupSteps: expected an integer >= 0");
  if (!is_integer(total) || total < 1) throw config_error("schedule.totalSteps: expected an integer >= 1");
  e.warmup_steps = (int64_t)warm;
  e.total_steps = (int64_t)total;
  Napi::Value seed = o.Get("seed");
  if (!seed.IsUndefined()) {
    if (!seed.IsNumber() || !is_integer(seed.As<Napi::Number>().DoubleValue()) || seed.As<Napi::Number>().DoubleValue() < 0)
      throw config_error("options.seed: expected an integer >= 0, got " + describe(seed));
    e.seed = (uint64_t)seed.As<Napi::Number>().DoubleValue();
  }
  return e;
}

std::vector<TensorIn> parse_tensors(const Napi::Value& v, const std::string& what,
                                    std::vector<Napi::Reference<Napi::Value>>& keep) {
  if (!v.IsArray()) throw input_error(what + ": expected an array of { name, dtype, shape, data }, got " + describe(v));
  Napi::Array a = v.As<Napi::Array>();
  std::vector<TensorIn> out;
  out.reserve(a.Length());
  for (uint32_t i = 0; i < a.Length(); i++) {
    const std::string at = what + "[" + std::to_string(i) + "]";
    Napi::Value ev = a.Get(i);
    if (!ev.IsObject()) throw input_error(at + ": expected { name, dtype, shape, data }, got " + describe(ev));
    Napi::Object e = ev.As<Napi::Object>();
    TensorIn t;
    Napi::Value name = e.Get("name");
    if (!name.IsString()) throw input_error(at + ".name: expected a string, got " + describe(name));
    t.name = name.As<Napi::String>().Utf8Value();
    const std::string tw = "tensor '" + t.name + "'";
    Napi::Value dt = e.Get("dtype");
    if (!dt.IsString()) throw input_error(tw + ": dtype: expected a string, got " + describe(dt));
    t.dtype = dt.As<Napi::String>().Utf8Value();
    t.shape = parse_shape(e.Get("shape"), tw);
    Napi::Value data = e.Get("data");
    if (!data.IsTypedArray() || data.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
      throw input_error(tw + ": data: expected a Uint8Array of raw little-endian bytes, got " + describe(data));
    Napi::Uint8Array u8 = data.As<Napi::Uint8Array>();
    t.data = u8.Data();
    t.size = u8.ByteLength();
    keep.push_back(Napi::Persistent(data));
    out.push_back(std::move(t));
  }
  return out;
}

ExportFilter parse_export_filter(const Napi::Value& v) {
  ExportFilter f;
  if (v.IsUndefined() || v.IsNull()) return f;
  Napi::Object o = require_object(v, "exportWeights filter", false);
  Napi::Value names = o.Get("names");
  if (!names.IsUndefined()) {
    if (!names.IsArray()) throw input_error("exportWeights: names: expected an array of strings, got " + describe(names));
    f.has_names = true;
    Napi::Array a = names.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); i++) {
      Napi::Value n = a.Get(i);
      if (!n.IsString())
        throw input_error("exportWeights: names[" + std::to_string(i) + "]: expected a string, got " + describe(n));
      f.names.push_back(n.As<Napi::String>().Utf8Value());
    }
  }
  Napi::Value tr = o.Get("trainableOnly");
  if (!tr.IsUndefined()) {
    if (!tr.IsBoolean()) throw input_error("exportWeights: trainableOnly: expected a boolean, got " + describe(tr));
    f.trainable_only = tr.As<Napi::Boolean>().Value();
  }
  f.dtype = str_field(o, "dtype", "exportWeights", "float32", false);
  return f;
}

Batch parse_batch(const Napi::Value& v, const std::string& what) {
  Napi::Object o = require_object(v, what + " batch", false);
  Batch b;
  for (const char* f : {"batch", "seq"}) {
    Napi::Value n = o.Get(f);
    if (!n.IsNumber() || !is_integer(n.As<Napi::Number>().DoubleValue()) || n.As<Napi::Number>().DoubleValue() < 1)
      throw input_error(what + ": " + f + ": expected an integer >= 1, got " + describe(n));
    (std::string(f) == "batch" ? b.batch : b.seq) = (int64_t)n.As<Napi::Number>().DoubleValue();
  }
  for (const char* f : {"tokens", "labels"}) {
    Napi::Value a = o.Get(f);
    if (!a.IsTypedArray() || a.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
      throw input_error(what + ": " + f + ": expected an Int32Array, got " + describe(a));
    Napi::Int32Array arr = a.As<Napi::Int32Array>();
    std::vector<int32_t>& dst = std::string(f) == "tokens" ? b.tokens : b.labels;
    dst.assign(arr.Data(), arr.Data() + arr.ElementLength());
  }
  return b;
}

OptimizerStateIn parse_optimizer_state(const Napi::Value& v, std::vector<Napi::Reference<Napi::Value>>& keep) {
  Napi::Object o = require_object(v, "optimizer state", false);
  OptimizerStateIn s;
  auto num = [&](const char* f) {
    Napi::Value n = o.Get(f);
    if (!n.IsNumber()) throw input_error(std::string("optimizer state: ") + f + ": expected a number, got " + describe(n));
    return n.As<Napi::Number>().DoubleValue();
  };
  double step = num("step"), scale = num("scale"), good = num("goodSteps");
  if (!is_integer(step)) throw input_error("optimizer state: step: expected an integer, got " + describe(o.Get("step")));
  if (!is_integer(good))
    throw input_error("optimizer state: goodSteps: expected an integer, got " + describe(o.Get("goodSteps")));
  s.step = (int64_t)step;
  s.scale = scale;
  s.good_steps = (int64_t)good;
  s.tensors = parse_tensors(o.Get("tensors"), "optimizer state tensors", keep);
  return s;
}

int64_t optional_int_field(const Napi::Value& obj, const char* field, const std::string& what, int64_t fallback,
                           int64_t min) {
  if (obj.IsUndefined() || obj.IsNull()) return fallback;
  if (!obj.IsObject()) throw input_error(what + ": expected an object, got " + describe(obj));
  Napi::Value v = obj.As<Napi::Object>().Get(field);
  if (v.IsUndefined()) return fallback;
  if (!v.IsNumber() || !is_integer(v.As<Napi::Number>().DoubleValue()) || v.As<Napi::Number>().DoubleValue() < min)
    throw input_error(what + ": " + field + ": expected an integer >= " + std::to_string(min) + ", got " + describe(v));
  return (int64_t)v.As<Napi::Number>().DoubleValue();
}

Napi::Value shape_to_js(Napi::Env env, const std::vector<int64_t>& shape) {
  Napi::Array a = Napi::Array::New(env, shape.size());
  for (size_t i = 0; i < shape.size(); i++) a.Set((uint32_t)i, Napi::Number::New(env, (double)shape[i]));
  return a;
}

Napi::Array tensors_to_js(Napi::Env env, std::vector<TensorBytes>&& tensors) {
  Napi::Array out = Napi::Array::New(env, tensors.size());
  for (size_t i = 0; i < tensors.size(); i++) {
    TensorBytes& t = tensors[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", t.name);
    o.Set("dtype", t.dtype);
    o.Set("shape", shape_to_js(env, t.shape));
    auto* holder = new std::vector<uint8_t>(std::move(t.data));
    const size_t len = holder->size();
    Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(
        env, holder->empty() ? nullptr : holder->data(), len,
        [](Napi::Env, void*, std::vector<uint8_t>* h) { delete h; }, holder);
    o.Set("data", Napi::Uint8Array::New(env, len, ab, 0));
    out.Set((uint32_t)i, o);
  }
  return out;
}

}  // namespace js
}  // namespace connito
