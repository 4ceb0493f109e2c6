// connito_sys: the small addon the supervisor loads (never the engine).
#include <napi.h>

#include <sys/file.h>

#include <cerrno>
#include <cstdlib>
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

// flock(fd: number, exclusive: boolean, wait: boolean): boolean
// The pid file lock: held for the life of the fd, released by the kernel when the holder dies, so
// a stale pid file is exactly "file present, lock free". Returns false when held elsewhere and
// wait is false; throws on any other error.
Napi::Value Flock(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsBoolean() || !info[2].IsBoolean()) {
    throw Napi::TypeError::New(env, "flock(fd: number, exclusive: boolean, wait: boolean)");
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  int op = (info[1].As<Napi::Boolean>().Value() ? LOCK_EX : LOCK_SH) | (info[2].As<Napi::Boolean>().Value() ? 0 : LOCK_NB);
  for (;;) {
    if (flock(fd, op) == 0) return Napi::Boolean::New(env, true);
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK) return Napi::Boolean::New(env, false);
    throw Napi::Error::New(env, std::string("flock failed: ") + std::strerror(errno));
  }
}

// funlock(fd: number): void
Napi::Value Funlock(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "funlock(fd: number)");
  if (flock(info[0].As<Napi::Number>().Int32Value(), LOCK_UN) != 0) {
    throw Napi::Error::New(env, std::string("flock(LOCK_UN) failed: ") + std::strerror(errno));
  }
  return env.Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("version", Napi::String::New(env, "0.1.0"));
  exports.Set("sdNotify", Napi::Function::New(env, SdNotify, "sdNotify"));
  exports.Set("flock", Napi::Function::New(env, Flock, "flock"));
  exports.Set("funlock", Napi::Function::New(env, Funlock, "funlock"));
  return exports;
}

}  // namespace

NODE_API_MODULE(connito_sys, Init)
