// The training engine behind the N-API surface: weights under reference state-dict names, the
// gradient-accumulating train step, AdamW with the LR schedule, clipping, non-finite detection and
// GradScaler semantics, optimizer state export/import. Pure C++ (no N-API): native/addon/ converts
// JS values to these structs and runs every long call on a worker thread.
//
// Errors are EngineError exceptions; their message names the tensor / argument, the expected and
// the given value, and a failed call changes nothing.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "model_config.h"

namespace connito {

class EngineError : public std::runtime_error {
 public:
  // Codes: CNM_ERR_ENGINE_INPUT (bad argument / tensor), CNM_ERR_ENGINE_CONFIG (model config or
  // options), CNM_ERR_ENGINE_BACKEND (requested backend unavailable), CNM_ERR_ENGINE_DISPOSED,
  // CNM_ERR_ENGINE_INTERNAL.
  EngineError(std::string code, const std::string& msg) : std::runtime_error(msg), code_(std::move(code)) {}
  const std::string& code() const { return code_; }

 private:
  std::string code_;
};

struct OptimizerOptions {
  double lr = 1e-5, beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0.1, max_grad_norm = 1.0;
};

struct EngineOptions {
  ModelConfig config;
  AllowedExperts allowed;
  std::string backend = "auto";  // auto | cpu | cuda
  std::string precision = "fp32";  // fp32 | fp16-mixed | bf16-mixed
  int threads = 0;                 // 0 = all cores
  bool recompute = false;
  OptimizerOptions opt;
  int64_t warmup_steps = 0, total_steps = 1;
  uint64_t seed = 0;
};

// A tensor crossing the boundary: raw little-endian C-contiguous bytes.
struct TensorBytes {
  std::string name;
  std::string dtype;  // float32 | float16 | bfloat16
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;
};

// An input tensor viewed in place (the addon keeps the JS typed arrays alive while the call runs,
// so multi-GiB loads are not copied).
struct TensorIn {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  size_t size = 0;
};

struct LoadResult {
  int64_t loaded = 0;
  std::vector<std::string> missing, ignored;
};

struct LossResult {
  double loss = 0;
  int64_t tokens = 0;
};

struct OptStepResult {
  int64_t step = 0;
  double grad_norm = 0, grad_sum = 0, lr = 0, scale_before = 1, scale_after = 1, param_sum = 0;
  bool skipped = false;
  std::vector<std::string> non_finite;
};

struct OptimizerState {
  int64_t step = 0;
  double scale = 1;
  int64_t good_steps = 0;
  std::vector<TensorBytes> tensors;  // "<param>.exp_avg", "<param>.exp_avg_sq" (float32)
};

struct OptimizerStateIn {
  int64_t step = 0;
  double scale = 1;
  int64_t good_steps = 0;
  std::vector<TensorIn> tensors;
};

struct EngineInfo {
  std::string backend, reason, device, gemm_kernel, precision;
  int threads = 1;
  int64_t trainable_params = 0, total_params = 0, memory_bytes = 0;
};

struct ExportFilter {
  bool has_names = false;
  std::vector<std::string> names;
  bool trainable_only = false;
  std::string dtype = "float32";
};

class EngineImpl;

class Engine {
 public:
  explicit Engine(const EngineOptions& opts);  // throws EngineError
  ~Engine();

  LoadResult load_weights(const std::vector<TensorIn>& entries);
  std::vector<TensorBytes> export_weights(const ExportFilter& f);
  LossResult train_step(const std::vector<int32_t>& tokens, const std::vector<int32_t>& labels, int64_t batch,
                        int64_t seq);
  LossResult eval_loss(const std::vector<int32_t>& tokens, const std::vector<int32_t>& labels, int64_t batch,
                       int64_t seq);
  // accumulation_steps: the GA divisor; 0 = the number of train_step calls since the last step.
  OptStepResult optimizer_step(int64_t accumulation_steps);
  OptimizerState export_optimizer_state();
  void import_optimizer_state(const OptimizerStateIn& s);
  EngineInfo info();
  // Test hook: the accumulated gradients divided as optimizer_step would divide them (before
  // clipping), float32, under the trainable tensors' names.
  std::vector<TensorBytes> export_gradients(int64_t accumulation_steps);

  // Cheap argument checks that run on the JS thread before any work is queued.
  void check_batch(const std::vector<int32_t>& tokens, const std::vector<int32_t>& labels, int64_t batch,
                   int64_t seq) const;

 private:
  std::unique_ptr<EngineImpl> impl_;
  std::mutex mu_;  // one call at a time (the TS wrapper also chains calls so they run in order)
};

// Element size of a boundary dtype, or 0 when unsupported.
size_t dtype_size(const std::string& dtype);

}  // namespace connito
