// Which compute backends this build and this machine offer. Pure C++ (no N-API).
#pragma once
#include <string>

namespace connito {

struct BackendProbe {
  bool cuda_built = false;      // compiled with nvcc
  bool cuda_available = false;  // a driver and at least one device answered
  int cuda_device_count = 0;
  std::string cuda_reason;      // why CUDA is not available, for the operator
  int cpu_threads = 1;
};

BackendProbe probe_backends();

#ifdef CONNITO_HAVE_CUDA
// Implemented in native/cuda/probe.cu. Returns the device count, or -1 with `reason` filled.
int cuda_device_count(std::string& reason);
#endif

}  // namespace connito
