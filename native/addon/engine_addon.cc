// connito_native: the N-API surface of the training engine. The only engine file set that knows JS.
//
// sharp / node-llama-cpp idiom: arguments are parsed and checked on the JS thread (bad input →
// rejected promise, nothing queued, the engine stays usable); every long call is a PromiseWorker
// whose Execute() makes no N-API call and turns every C++ exception into an error string + code;
// objects are released with an explicit, idempotent dispose().
//
// Exports: version, probeBackends(), createEngine(opts) → Promise<Engine>, _gradCheck(spec) (tests).
// Engine methods: loadWeights, exportWeights, trainStep, evalLoss, optimizerStep,
// exportOptimizerState, importOptimizerState, info, dispose, _exportGradients (tests).
// src/trainer/engine.ts documents the semantics and gives them types.
#include <napi.h>

#include <functional>
#include <memory>
#include <new>

#include "backend_probe.h"
#include "engine.h"
#include "engine_convert.h"
#include "gemm_cpu.h"
#include "gradcheck.h"

namespace connito {
namespace {

constexpr const char* kDisposed = "CNM_ERR_ENGINE_DISPOSED";

Napi::Error make_error(Napi::Env env, const std::string& code, const std::string& msg) {
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, code));
  return e;
}

Napi::Promise rejected(Napi::Env env, const std::string& code, const std::string& msg) {
  auto d = Napi::Promise::Deferred::New(env);
  d.Reject(make_error(env, code, msg).Value());
  return d.Promise();
}

// A promise-returning async call: Run() on a libuv worker thread, Result() back on the JS thread.
class PromiseWorker : public Napi::AsyncWorker {
 public:
  PromiseWorker(Napi::Env env, const char* name)
      : Napi::AsyncWorker(env, name), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  std::vector<Napi::Reference<Napi::Value>> keep;  // JS buffers viewed by Run()

 protected:
  virtual void Run() = 0;
  virtual Napi::Value Result(Napi::Env env) = 0;

  void Execute() override {
    try {
      Run();
    } catch (const EngineError& e) {
      code_ = e.code();
      SetError(e.what());
    } catch (const std::bad_alloc&) {
      code_ = "CNM_ERR_ENGINE_OOM";
      SetError("out of memory in the training engine: reduce batch/seq, enable recompute, or train fewer experts");
    } catch (const std::exception& e) {
      code_ = "CNM_ERR_ENGINE_INTERNAL";
      SetError(std::string("internal engine error: ") + e.what());
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    try {
      deferred_.Resolve(Result(env));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }
  void OnError(const Napi::Error& e) override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    Napi::Object err = e.Value();
    err.Set("code", Napi::String::New(env, code_.empty() ? "CNM_ERR_ENGINE_INTERNAL" : code_));
    deferred_.Reject(err);
  }

 private:
  std::string code_;
  Napi::Promise::Deferred deferred_;
};

// A worker from two lambdas.
class LambdaWorker : public PromiseWorker {
 public:
  LambdaWorker(Napi::Env env, const char* name, std::function<void()> run, std::function<Napi::Value(Napi::Env)> res)
      : PromiseWorker(env, name), run_(std::move(run)), res_(std::move(res)) {}

 protected:
  void Run() override { run_(); }
  Napi::Value Result(Napi::Env env) override { return res_(env); }

 private:
  std::function<void()> run_;
  std::function<Napi::Value(Napi::Env)> res_;
};

Napi::Promise queue(Napi::Env env, const char* name, std::function<void()> run,
                    std::function<Napi::Value(Napi::Env)> res, std::vector<Napi::Reference<Napi::Value>>* keep = nullptr) {
  auto* w = new LambdaWorker(env, name, std::move(run), std::move(res));
  if (keep) w->keep = std::move(*keep);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

struct AddonData {
  Napi::FunctionReference engine_ctor;
};

Napi::Object loss_to_js(Napi::Env env, const LossResult& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("loss", r.loss);
  o.Set("tokens", Napi::Number::New(env, (double)r.tokens));
  return o;
}

Napi::Array strings_to_js(Napi::Env env, const std::vector<std::string>& v) {
  Napi::Array a = Napi::Array::New(env, v.size());
  for (size_t i = 0; i < v.size(); i++) a.Set((uint32_t)i, v[i]);
  return a;
}

// Runs `body` and turns parse errors into a rejected promise.
template <typename F>
Napi::Value guarded(Napi::Env env, F&& body) {
  try {
    return body();
  } catch (const js::JsInputError& e) {
    return rejected(env, e.code, e.what());
  } catch (const EngineError& e) {
    return rejected(env, e.code(), e.what());
  }
}

class EngineWrap : public Napi::ObjectWrap<EngineWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Engine",
                       {InstanceMethod<&EngineWrap::LoadWeights>("loadWeights"),
                        InstanceMethod<&EngineWrap::ExportWeights>("exportWeights"),
                        InstanceMethod<&EngineWrap::TrainStep>("trainStep"),
                        InstanceMethod<&EngineWrap::EvalLoss>("evalLoss"),
                        InstanceMethod<&EngineWrap::OptimizerStep>("optimizerStep"),
                        InstanceMethod<&EngineWrap::ExportOptimizerState>("exportOptimizerState"),
                        InstanceMethod<&EngineWrap::ImportOptimizerState>("importOptimizerState"),
                        InstanceMethod<&EngineWrap::Info>("info"),
                        InstanceMethod<&EngineWrap::Dispose>("dispose"),
                        InstanceMethod<&EngineWrap::ExportGradients>("_exportGradients")});
  }

  explicit EngineWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<EngineWrap>(info) {
    if (info.Length() < 1 || !info[0].IsExternal())
      throw make_error(info.Env(), "CNM_ERR_ENGINE_INPUT", "Engine cannot be constructed directly: use createEngine()");
    auto* sp = info[0].As<Napi::External<std::shared_ptr<Engine>>>().Data();
    engine_ = *sp;
  }

 private:
  std::shared_ptr<Engine> engine_;

  std::shared_ptr<Engine> live(Napi::Env env, const char* method) {
    if (!engine_)
      throw js::JsInputError(kDisposed, std::string("engine.") + method +
                                            "(): the engine is disposed; create a new one with createEngine()");
    return engine_;
  }

  Napi::Value LoadWeights(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      auto eng = live(env, "loadWeights");
      std::vector<Napi::Reference<Napi::Value>> keep;
      auto entries = std::make_shared<std::vector<TensorIn>>(js::parse_tensors(info[0], "loadWeights", keep));
      auto res = std::make_shared<LoadResult>();
      return queue(
          env, "connito.loadWeights", [eng, entries, res] { *res = eng->load_weights(*entries); },
          [res](Napi::Env env) -> Napi::Value {
            Napi::Object o = Napi::Object::New(env);
            o.Set("loaded", Napi::Number::New(env, (double)res->loaded));
            o.Set("missing", strings_to_js(env, res->missing));
            o.Set("ignored", strings_to_js(env, res->ignored));
            return o;
          },
          &keep);
    });
  }

  Napi::Value ExportWeights(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      auto eng = live(env, "exportWeights");
      ExportFilter f = js::parse_export_filter(info[0]);
      auto out = std::make_shared<std::vector<TensorBytes>>();
      return queue(
          env, "connito.exportWeights", [eng, f, out] { *out = eng->export_weights(f); },
          [out](Napi::Env env) -> Napi::Value { return js::tensors_to_js(env, std::move(*out)); });
    });
  }

  Napi::Value Step(const Napi::CallbackInfo& info, bool train) {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      const char* name = train ? "trainStep" : "evalLoss";
      auto eng = live(env, name);
      auto b = std::make_shared<js::Batch>(js::parse_batch(info[0], name));
      eng->check_batch(b->tokens, b->labels, b->batch, b->seq);
      auto res = std::make_shared<LossResult>();
      return queue(
          env, train ? "connito.trainStep" : "connito.evalLoss",
          [eng, b, res, train] {
            *res = train ? eng->train_step(b->tokens, b->labels, b->batch, b->seq)
                         : eng->eval_loss(b->tokens, b->labels, b->batch, b->seq);
          },
          [res](Napi::Env env) -> Napi::Value { return loss_to_js(env, *res); });
    });
  }
  Napi::Value TrainStep(const Napi::CallbackInfo& info) { return Step(info, true); }
  Napi::Value EvalLoss(const Napi::CallbackInfo& info) { return Step(info, false); }

  Napi::Value OptimizerStep(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      auto eng = live(env, "optimizerStep");
      const int64_t ga = js::optional_int_field(info[0], "accumulationSteps", "optimizerStep", 0, 1);
      auto res = std::make_shared<OptStepResult>();
      return queue(
          env, "connito.optimizerStep", [eng, ga, res] { *res = eng->optimizer_step(ga); },
          [res](Napi::Env env) -> Napi::Value {
            Napi::Object o = Napi::Object::New(env);
            o.Set("step", Napi::Number::New(env, (double)res->step));
            o.Set("gradNorm", res->grad_norm);
            o.Set("gradSum", res->grad_sum);
            o.Set("skipped", res->skipped);
            o.Set("lr", res->lr);
            o.Set("scaleBefore", res->scale_before);
            o.Set("scaleAfter", res->scale_after);
            o.Set("nonFinite", strings_to_js(env, res->non_finite));
            o.Set("paramSum", res->param_sum);
            return o;
          });
    });
  }

  Napi::Value ExportOptimizerState(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      auto eng = live(env, "exportOptimizerState");
      auto res = std::make_shared<OptimizerState>();
      return queue(
          env, "connito.exportOptimizerState", [eng, res] { *res = eng->export_optimizer_state(); },
          [res](Napi::Env env) -> Napi::Value {
            Napi::Object o = Napi::Object::New(env);
            o.Set("step", Napi::Number::New(env, (double)res->step));
            o.Set("scale", res->scale);
            o.Set("goodSteps", Napi::Number::New(env, (double)res->good_steps));
            o.Set("tensors", js::tensors_to_js(env, std::move(res->tensors)));
            return o;
          });
    });
  }

  Napi::Value ImportOptimizerState(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      auto eng = live(env, "importOptimizerState");
      std::vector<Napi::Reference<Napi::Value>> keep;
      auto st = std::make_shared<OptimizerStateIn>(js::parse_optimizer_state(info[0], keep));
      return queue(
          env, "connito.importOptimizerState", [eng, st] { eng->import_optimizer_state(*st); },
          [](Napi::Env env) -> Napi::Value { return env.Undefined(); }, &keep);
    });
  }

  Napi::Value ExportGradients(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      auto eng = live(env, "_exportGradients");
      const int64_t ga = js::optional_int_field(info[0], "accumulationSteps", "_exportGradients", 0, 1);
      auto out = std::make_shared<std::vector<TensorBytes>>();
      return queue(
          env, "connito.exportGradients", [eng, ga, out] { *out = eng->export_gradients(ga); },
          [out](Napi::Env env) -> Napi::Value { return js::tensors_to_js(env, std::move(*out)); });
    });
  }

  Napi::Value Info(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!engine_)
      throw make_error(env, kDisposed, "engine.info(): the engine is disposed; create a new one with createEngine()");
    EngineInfo i = engine_->info();
    Napi::Object o = Napi::Object::New(env);
    o.Set("backend", i.backend);
    o.Set("reason", i.reason);
    o.Set("device", i.device);
    o.Set("threads", i.threads);
    o.Set("trainableParams", Napi::Number::New(env, (double)i.trainable_params));
    o.Set("totalParams", Napi::Number::New(env, (double)i.total_params));
    o.Set("memoryBytes", Napi::Number::New(env, (double)i.memory_bytes));
    o.Set("gemmKernel", i.gemm_kernel);
    o.Set("precision", i.precision);
    return o;
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    // Running calls hold their own reference; the memory goes when the last one finishes.
    engine_.reset();
    return info.Env().Undefined();
  }
};

Napi::Value CreateEngine(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    auto opts = std::make_shared<EngineOptions>(js::parse_engine_options(info[0]));
    auto holder = std::make_shared<std::shared_ptr<Engine>>();
    return queue(
        env, "connito.createEngine", [opts, holder] { *holder = std::make_shared<Engine>(*opts); },
        [holder](Napi::Env env) -> Napi::Value {
          AddonData* data = env.GetInstanceData<AddonData>();
          auto ext = Napi::External<std::shared_ptr<Engine>>::New(env, holder.get());
          Napi::Object obj = data->engine_ctor.New({ext});
          return obj;
        });
  });
}


Napi::Value GradCheck(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (!info[0].IsObject()) throw js::JsInputError("CNM_ERR_ENGINE_INPUT", "_gradCheck: expected { op, ... }");
    Napi::Object o = info[0].As<Napi::Object>();
    Napi::Value opv = o.Get("op");
    if (!opv.IsString()) throw js::JsInputError("CNM_ERR_ENGINE_INPUT", "_gradCheck: op: expected a string");
    const std::string op = opv.As<Napi::String>().Utf8Value();
    const uint64_t seed = (uint64_t)js::optional_int_field(o, "seed", "_gradCheck", 1, 0);
    auto out = std::make_shared<std::vector<GradCheckResult>>();
    std::function<void()> run;
    if (op == "model") {
      auto cfg = std::make_shared<ModelConfig>(js::parse_config(o.Get("config")));
      auto allowed = std::make_shared<AllowedExperts>(js::parse_allowed(o.Get("allowedExperts")));
      const int64_t batch = js::optional_int_field(o, "batch", "_gradCheck", 2, 1);
      const int64_t seq = js::optional_int_field(o, "seq", "_gradCheck", 8, 2);
      const int64_t coords = js::optional_int_field(o, "maxCoords", "_gradCheck", 0, 0);
      Napi::Value rc = o.Get("recompute");
      const bool recompute = rc.IsBoolean() && rc.As<Napi::Boolean>().Value();
      run = [=] {
        try {
          *out = gradcheck_model(*cfg, *allowed, batch, seq, seed, coords, recompute);
        } catch (const std::invalid_argument& e) {
          throw EngineError("CNM_ERR_ENGINE_INPUT", e.what());
        }
      };
    } else {
      run = [=] {
        try {
          *out = gradcheck_op(op, seed);
        } catch (const std::invalid_argument& e) {
          throw EngineError("CNM_ERR_ENGINE_INPUT", e.what());
        }
      };
    }
    return queue(env, "connito.gradCheck", run, [out](Napi::Env env) -> Napi::Value {
      Napi::Array a = Napi::Array::New(env, out->size());
      for (size_t i = 0; i < out->size(); i++) {
        const GradCheckResult& r = (*out)[i];
        Napi::Object x = Napi::Object::New(env);
        x.Set("op", r.op);
        x.Set("checked", Napi::Number::New(env, (double)r.checked));
        x.Set("skipped", Napi::Number::New(env, (double)r.skipped));
        x.Set("maxAbsErr", r.max_abs_err);
        x.Set("maxRelErr", r.max_rel_err);
        x.Set("maxAbsGrad", r.max_abs_grad);
        a.Set((uint32_t)i, x);
      }
      return a;
    });
  });
}

Napi::Value ProbeBackends(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  BackendProbe p = probe_backends();
  Napi::Object out = Napi::Object::New(env);
  out.Set("cudaBuilt", p.cuda_built);
  out.Set("cudaAvailable", p.cuda_available);
  out.Set("cudaDeviceCount", p.cuda_device_count);
  out.Set("cudaReason", p.cuda_reason);
  out.Set("cpuThreads", p.cpu_threads);
  out.Set("gemmKernel", gemm_kernel_name());
  return out;
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  data->engine_ctor = Napi::Persistent(EngineWrap::Define(env));
  env.SetInstanceData<AddonData>(data);
  exports.Set("version", Napi::String::New(env, "0.1.0"));
  exports.Set("probeBackends", Napi::Function::New(env, ProbeBackends, "probeBackends"));
  exports.Set("createEngine", Napi::Function::New(env, CreateEngine, "createEngine"));
  exports.Set("_gradCheck", Napi::Function::New(env, GradCheck, "_gradCheck"));
  return exports;
}

}  // namespace connito

static Napi::Object InitConnitoNative(Napi::Env env, Napi::Object exports) { return connito::Init(env, exports); }

NODE_API_MODULE(connito_native, InitConnitoNative)
