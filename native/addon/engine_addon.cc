// connito_native: the N-API surface of the training engine. The only engine file that knows JS.
#include <napi.h>

#include "backend_probe.h"

namespace {

Napi::Value ProbeBackends(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  connito::BackendProbe p = connito::probe_backends();
  Napi::Object out = Napi::Object::New(env);
  out.Set("cudaBuilt", p.cuda_built);
  out.Set("cudaAvailable", p.cuda_available);
  out.Set("cudaDeviceCount", p.cuda_device_count);
  out.Set("cudaReason", p.cuda_reason);
  out.Set("cpuThreads", p.cpu_threads);
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("version", Napi::String::New(env, "0.1.0"));
  exports.Set("probeBackends", Napi::Function::New(env, ProbeBackends, "probeBackends"));
  return exports;
}

}  // namespace

NODE_API_MODULE(connito_native, Init)
