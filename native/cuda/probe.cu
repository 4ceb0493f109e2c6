// Device discovery through the statically linked CUDA runtime: without a driver this returns
// an error code instead of failing to load, which is what lets the addon fall back to CPU.
#include <cuda_runtime.h>

#include <string>

#include "backend_probe.h"

namespace connito {

int cuda_device_count(std::string& reason) {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    reason = std::string("CUDA runtime: ") + cudaGetErrorName(err) + ": " + cudaGetErrorString(err);
    cudaGetLastError();  // clear the sticky error so later probes start clean
    return -1;
  }
  return count;
}

}  // namespace connito
