// Host-side launchers of the CUDA kernels (native/cuda/*.cu), callable from plain C++: no CUDA
// header is needed to include this file. Every function returns "" on success or an error string
// ("<file>:<line>: <cudaError name>: <text>") that the engine turns into a JS exception — never
// exit(). Pointers are device pointers; `stream` is a cudaStream_t (nullptr = default stream).
// Layouts and math are exactly those of the CPU kernels in cpu_ops.h, which are the reference.
//
// Status: compiled in CI with nvcc for sm_80/86/89/90; they have not been run (no GPU here).
// Not yet written: the attention core (a FlashAttention-style kernel), the per-expert GEMM batching
// and the model orchestration; the CUDA training backend is the next issue.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace connito {
namespace cuda {

// rmsnorm.cu
std::string rmsnorm_forward(const float* x, const float* w, float* y, float* rstd, int64_t N, int64_t D, float eps,
                            int64_t ldx, int64_t ldy, void* stream);
std::string rmsnorm_backward(const float* dy, const float* x, const float* w, const float* rstd, float* dx, int64_t N,
                             int64_t D, bool accumulate, int64_t ldx, int64_t lddx, void* stream);
// rope.cu (cos/sin tables [seq, d/2], attention factor folded in)
std::string rope_forward(float* x, int64_t N, int64_t seq, int64_t heads, int64_t ld, int64_t hs, int64_t off,
                         int64_t d, const float* cos_t, const float* sin_t, void* stream);
std::string rope_backward(float* dx, int64_t N, int64_t seq, int64_t heads, int64_t ld, int64_t hs, int64_t off,
                          int64_t d, const float* cos_t, const float* sin_t, void* stream);
// swiglu.cu
std::string swiglu_forward(const float* gu, float* a, int64_t N, int64_t W, void* stream);
std::string swiglu_backward(const float* da, const float* gu, float* dgu, int64_t N, int64_t W, void* stream);
// embedding.cu
std::string embedding_forward(const int32_t* tokens, const float* table, float* out, int64_t N, int64_t D,
                              void* stream);
// cross_entropy.cu: per-row loss into row_loss[n]; logits overwritten with dlogits when grad_scale != 0.
std::string cross_entropy_block(float* logits, const int32_t* targets, float* row_loss, int64_t n, int64_t V,
                                float grad_scale, void* stream);
// router.cu: allowed = the layer's allowed org ids (ascending, ≤ 256), K ≤ A.
std::string router_forward(const float* logits, float* probs, int64_t N, int64_t E, int64_t K, const int32_t* allowed,
                           int64_t A, double scaling, int32_t* expert, int32_t* local, float* weight, void* stream);
std::string router_backward(const float* probs, const int32_t* expert, const float* dweight, float* dlogits, int64_t N,
                            int64_t E, int64_t K, double scaling, void* stream);
// adamw.cu: Σg², Σg and a non-finite flag of g·inv (partials reduced on the device into out[0..2]),
// then the fused unscale·clip + AdamW + zero-the-gradient sweep.
std::string grad_stats(const float* g, int64_t n, float inv, double* out3, void* stream);
std::string adamw_step(float* p, float* g, float* m, float* v, int64_t n, float gscale, float decay, float beta1,
                       float beta2, float step_size, float bc2_sqrt, float eps, void* stream);

// cublas.cu: cuBLAS is loaded at run time (dlopen), so the addon loads where it is absent.
// Row-major C[M×N] = alpha·op(A)·op(B) + beta·C with the same arguments as connito::gemm.
std::string cublas_available();  // "" when libcublas could be loaded, else why not
std::string sgemm(void* handle, bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
                  const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
std::string cublas_create(void** handle, void* stream);
std::string cublas_destroy(void* handle);

}  // namespace cuda
}  // namespace connito
