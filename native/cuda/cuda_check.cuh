// Error handling for the CUDA kernels (llm.c's cudaCheck, but returning to the caller instead of
// exiting: the engine is inside a Node process). Every CUDA call and every launch goes through
// CNM_CUDA_TRY, which returns "<file>:<line>: <name>: <text>" from the enclosing std::string function.
#pragma once

#include <cuda_runtime.h>

#include <string>

namespace connito {
namespace cuda {

inline std::string cuda_error_string(cudaError_t err, const char* file, int line) {
  return std::string(file) + ":" + std::to_string(line) + ": " + cudaGetErrorName(err) + ": " +
         cudaGetErrorString(err);
}

inline cudaStream_t as_stream(void* s) { return static_cast<cudaStream_t>(s); }

// Blocks of `threads` covering n items (n > 0), capped at the grid limit of one dimension.
inline unsigned blocks_for(int64_t n, int threads) {
  int64_t b = (n + threads - 1) / threads;
  return (unsigned)(b > 2147483647 ? 2147483647 : (b < 1 ? 1 : b));
}

}  // namespace cuda
}  // namespace connito

#define CNM_CUDA_TRY(call)                                                          \
  do {                                                                              \
    cudaError_t cnm_err_ = (call);                                                  \
    if (cnm_err_ != cudaSuccess) {                                                  \
      cudaGetLastError();                                                           \
      return ::connito::cuda::cuda_error_string(cnm_err_, __FILE__, __LINE__);      \
    }                                                                               \
  } while (0)

// After a kernel launch: launch-configuration errors surface here, asynchronous faults at the next
// synchronising call (which is checked too).
#define CNM_CUDA_LAUNCHED() CNM_CUDA_TRY(cudaGetLastError())
