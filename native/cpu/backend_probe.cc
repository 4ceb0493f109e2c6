#include "backend_probe.h"

#include <thread>
#ifdef _OPENMP
#include <omp.h>
#endif

namespace connito {

BackendProbe probe_backends() {
  BackendProbe p;
#ifdef _OPENMP
  p.cpu_threads = omp_get_max_threads();
#else
  p.cpu_threads = static_cast<int>(std::thread::hardware_concurrency());
  if (p.cpu_threads < 1) p.cpu_threads = 1;
#endif
#ifdef CONNITO_HAVE_CUDA
  p.cuda_built = true;
  int n = cuda_device_count(p.cuda_reason);
  if (n > 0) {
    p.cuda_available = true;
    p.cuda_device_count = n;
  } else if (n == 0 && p.cuda_reason.empty()) {
    p.cuda_reason = "no CUDA device found";
  }
#else
  p.cuda_reason = "this build has no CUDA backend (nvcc was not found when the addon was built)";
#endif
  return p;
}

}  // namespace connito
