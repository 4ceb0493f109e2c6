// cuBLAS, loaded at run time: the toolchain here has no cuBLAS, and the addon must load on machines
// without one, so the few entry points the engine uses are declared here and resolved with dlopen
// from libcublas.so.{13,12,11}. Row-major GEMMs map onto column-major cuBLAS by computing Cᵀ = op(B)ᵀ·op(A)ᵀ.
#include <dlfcn.h>

#include <mutex>

#include "cuda_check.cuh"
#include "cuda_kernels.h"

namespace connito {
namespace cuda {
namespace {

using cublasStatus = int;  // cublasStatus_t: 0 = CUBLAS_STATUS_SUCCESS
using cublasHandle = void*;
enum CublasOp { kOpN = 0, kOpT = 1 };

struct CublasApi {
  void* lib = nullptr;
  std::string error;
  cublasStatus (*create)(cublasHandle*) = nullptr;
  cublasStatus (*destroy)(cublasHandle) = nullptr;
  cublasStatus (*set_stream)(cublasHandle, cudaStream_t) = nullptr;
  cublasStatus (*sgemm)(cublasHandle, int, int, int, int, int, const float*, const float*, int, const float*, int,
                        const float*, float*, int) = nullptr;
};

const CublasApi& api() {
  static CublasApi a;
  static std::once_flag once;
  std::call_once(once, [] {
    for (const char* name : {"libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so"}) {
      a.lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
      if (a.lib) break;
    }
    if (!a.lib) {
      a.error = "libcublas.so.{13,12,11} not found (install the CUDA toolkit's cuBLAS or add it to LD_LIBRARY_PATH)";
      return;
    }
    auto sym = [&](const char* s) {
      void* p = dlsym(a.lib, s);
      if (!p && a.error.empty()) a.error = std::string("libcublas has no symbol ") + s;
      return p;
    };
    a.create = reinterpret_cast<decltype(a.create)>(sym("cublasCreate_v2"));
    a.destroy = reinterpret_cast<decltype(a.destroy)>(sym("cublasDestroy_v2"));
    a.set_stream = reinterpret_cast<decltype(a.set_stream)>(sym("cublasSetStream_v2"));
    a.sgemm = reinterpret_cast<decltype(a.sgemm)>(sym("cublasSgemm_v2"));
  });
  return a;
}

std::string status_error(const char* what, cublasStatus s) {
  return std::string(what) + " failed with cublasStatus " + std::to_string(s);
}

}  // namespace

std::string cublas_available() { return api().error; }

std::string cublas_create(void** handle, void* stream) {
  const CublasApi& a = api();
  if (!a.error.empty()) return a.error;
  cublasHandle h = nullptr;
  if (cublasStatus s = a.create(&h)) return status_error("cublasCreate", s);
  if (cublasStatus s = a.set_stream(h, as_stream(stream))) {
    a.destroy(h);
    return status_error("cublasSetStream", s);
  }
  *handle = h;
  return "";
}

std::string cublas_destroy(void* handle) {
  const CublasApi& a = api();
  if (!a.error.empty() || !handle) return a.error;
  if (cublasStatus s = a.destroy(handle)) return status_error("cublasDestroy", s);
  return "";
}

std::string sgemm(void* handle, bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
                  const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  const CublasApi& a = api();
  if (!a.error.empty()) return a.error;
  const int64_t lim = 2147483647;
  if (M > lim || N > lim || K > lim || lda > lim || ldb > lim || ldc > lim) return "sgemm: dimension exceeds int32";
  if (cublasStatus s = a.sgemm(handle, transB ? kOpT : kOpN, transA ? kOpT : kOpN, (int)N, (int)M, (int)K, &alpha, B,
                               (int)ldb, A, (int)lda, &beta, C, (int)ldc))
    return status_error("cublasSgemm", s);
  return "";
}

}  // namespace cuda
}  // namespace connito
