// connito_sys: the small addon the supervisor loads (never the engine).
#include <napi.h>

#include <cstring>
#include <string>

#include "sd_notify.h"

namespace {

// sdNotify(state: string, socketPath?: string): number
// socketPath defaults to $NOTIFY_SOCKET; returns 1 sent, 0 not under systemd; throws on failure.
Napi::Value SdNotify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    throw Napi::TypeError::New(env, "sdNotify(state: string, socketPath?: string): state must be a string");
  }
  std::string state = info[0].As<Napi::String>().Utf8Value();
  std::string path;
  if (info.Length() >= 2 && info[1].IsString()) {
    path = info[1].As<Napi::String>().Utf8Value();
  } else if (const char* env_path = std::getenv("NOTIFY_SOCKET")) {
    path = env_path;
  }
  int rc = connito_sd_notify(path.c_str(), state.data(), state.size());
  if (rc < 0) {
    throw Napi::Error::New(env, std::string("sd_notify to ") + path + " failed: " + std::strerror(-rc));
  }
  return Napi::Number::New(env, rc);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("version", Napi::String::New(env, "0.1.0"));
  exports.Set("sdNotify", Napi::Function::New(env, SdNotify, "sdNotify"));
  return exports;
}

}  // namespace

NODE_API_MODULE(connito_sys, Init)
