// Engine: weights I/O, train step, optimizer (see engine.h). CPU backend.
//
// Gradient accumulation: train_step adds ∂(s·Σ_valid CE / n_valid)/∂W into fp32 accumulators, where
// s is the current loss scale (1 unless fp16-mixed). optimizer_step divides by s·GA (GA = the
// number of train_step calls since the last optimizer step, or the caller's value), which is what
// PyTorch accumulates with `scaler.scale(loss / GA).backward()` GA times, then:
//   1. non-finite check per tensor → skip (no update, scale ×0.5 under fp16-mixed), report names;
//   2. total norm over all trainable gradients (double), clip by max_norm/(norm+1e-6) when < 1;
//   3. lr = base·multiplier(k) with k = completed steps (LambdaLR semantics);
//   4. AdamW (torch): p·=(1−lr·wd); m,v moments; p −= lr/(1−β1^t)·m/(√v/√(1−β2^t)+ε);
//   5. GradScaler growth: after 2000 consecutive good steps scale ×2 (fp16-mixed only).
#include "engine.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "backend_probe.h"
#include "gemm_cpu.h"
#include "hd_math.h"
#include "model_cpu.h"
#include "optim_cpu.h"
#include "param_store.h"

namespace connito {

size_t dtype_size(const std::string& d) {
  if (d == "float32") return 4;
  if (d == "float16" || d == "bfloat16") return 2;
  return 0;
}

namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  std::ostringstream o;
  o << "[";
  for (size_t i = 0; i < s.size(); i++) o << (i ? ", " : "") << s[i];
  o << "]";
  return o.str();
}

EngineError input_error(const std::string& msg) { return EngineError("CNM_ERR_ENGINE_INPUT", msg); }

// Elements per parallel work item of the optimizer sweeps.
constexpr int64_t kChunk = 1 << 16;

// Index of the first non-finite element of raw bytes, or -1 (exponent bits all ones).
int64_t first_non_finite(const uint8_t* p, const std::string& dtype, int64_t n) {
  if (dtype == "float32") {
    for (int64_t i = 0; i < n; i++) {
      uint32_t x;
      std::memcpy(&x, p + 4 * i, 4);
      if ((x & 0x7f800000u) == 0x7f800000u) return i;
    }
  } else if (dtype == "float16") {
    for (int64_t i = 0; i < n; i++) {
      uint16_t x;
      std::memcpy(&x, p + 2 * i, 2);
      if ((x & 0x7c00u) == 0x7c00u) return i;
    }
  } else {
    for (int64_t i = 0; i < n; i++) {
      uint16_t x;
      std::memcpy(&x, p + 2 * i, 2);
      if ((x & 0x7f80u) == 0x7f80u) return i;
    }
  }
  return -1;
}

void bytes_to_float(const uint8_t* p, const std::string& dtype, int64_t n, float* out) {
  if (dtype == "float32") {
    std::memcpy(out, p, sizeof(float) * n);
  } else if (dtype == "float16") {
#pragma omp parallel for schedule(static) if (n > (1 << 16))
    for (int64_t i = 0; i < n; i++) {
      uint16_t x;
      std::memcpy(&x, p + 2 * i, 2);
      out[i] = half_bits_to_float(x);
    }
  } else {
#pragma omp parallel for schedule(static) if (n > (1 << 16))
    for (int64_t i = 0; i < n; i++) {
      uint16_t x;
      std::memcpy(&x, p + 2 * i, 2);
      out[i] = bf16_bits_to_float(x);
    }
  }
}

void float_to_bytes(const float* in, int64_t n, const std::string& dtype, uint8_t* p) {
  if (dtype == "float32") {
    std::memcpy(p, in, sizeof(float) * n);
  } else if (dtype == "float16") {
#pragma omp parallel for schedule(static) if (n > (1 << 16))
    for (int64_t i = 0; i < n; i++) {
      uint16_t x = float_to_half_bits(in[i]);
      std::memcpy(p + 2 * i, &x, 2);
    }
  } else {
#pragma omp parallel for schedule(static) if (n > (1 << 16))
    for (int64_t i = 0; i < n; i++) {
      uint16_t x = float_to_bf16_bits(in[i]);
      std::memcpy(p + 2 * i, &x, 2);
    }
  }
}

TensorBytes to_tensor(const std::string& name, const std::vector<int64_t>& shape, const float* src, int64_t numel,
                      const std::string& dtype) {
  TensorBytes t;
  t.name = name;
  t.dtype = dtype;
  t.shape = shape;
  t.data.resize((size_t)numel * dtype_size(dtype));
  float_to_bytes(src, numel, dtype, t.data.data());
  return t;
}

std::string cpu_model_name() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("model name", 0) == 0) {
      auto pos = line.find(':');
      if (pos != std::string::npos) return line.substr(pos + 2);
    }
  }
  return "unknown CPU";
}

int default_threads() {
#ifdef _OPENMP
  return omp_get_num_procs();
#else
  return 1;
#endif
}

}  // namespace

class EngineImpl {
 public:
  EngineOptions o;
  std::string reason;
  int threads = 1;
  bool scaler_enabled = false;
  ParamStore<float> w;        // every parameter
  ParamStore<float> g, m, v;  // trainable only: gradient accumulators and AdamW moments
  std::vector<size_t> trainable;  // indices into w.specs, state-dict order
  std::vector<bool> loaded;
  std::unique_ptr<CpuModel<float>> model;
  ModelView<float> view;
  int64_t step = 0, good_steps = 0, micro_steps = 0;
  double scale = 1.0;
  // Read by info() without the call mutex (info() is synchronous on the JS thread and must not
  // wait for a running step).
  std::atomic<int64_t> memory_bytes{0};
  int64_t total_params = 0, trainable_params = 0;

  void update_memory() {
    memory_bytes = (int64_t)(w.bytes() + g.bytes() + m.bytes() + v.bytes() + model->workspace_bytes());
  }

  explicit EngineImpl(const EngineOptions& opts) : o(opts) {
    std::string err = validate_config(o.config);
    if (!err.empty()) throw EngineError("CNM_ERR_ENGINE_CONFIG", "config: " + err);
    err = validate_allowed(o.config, o.allowed);
    if (!err.empty()) throw EngineError("CNM_ERR_ENGINE_CONFIG", err);
    if (o.precision != "fp32" && o.precision != "fp16-mixed" && o.precision != "bf16-mixed")
      throw EngineError("CNM_ERR_ENGINE_CONFIG",
                        "precision: expected 'fp32', 'fp16-mixed' or 'bf16-mixed', got '" + o.precision + "'");
    const OptimizerOptions& op = o.opt;
    auto bad = [](const std::string& f, const std::string& want, double got) {
      std::ostringstream s;
      s << "optimizer." << f << ": expected " << want << ", got " << got;
      return EngineError("CNM_ERR_ENGINE_CONFIG", s.str());
    };
    if (!(op.lr >= 0) || !std::isfinite(op.lr)) throw bad("lr", "a finite number >= 0", op.lr);
    if (!(op.beta1 >= 0 && op.beta1 < 1)) throw bad("betas[0]", "a number in [0, 1)", op.beta1);
    if (!(op.beta2 >= 0 && op.beta2 < 1)) throw bad("betas[1]", "a number in [0, 1)", op.beta2);
    if (!(op.eps > 0) || !std::isfinite(op.eps)) throw bad("eps", "a finite number > 0", op.eps);
    if (!(op.weight_decay >= 0) || !std::isfinite(op.weight_decay))
      throw bad("weightDecay", "a finite number >= 0", op.weight_decay);
    if (!(op.max_grad_norm > 0)) throw bad("maxGradNorm", "a number > 0 (Infinity disables clipping)", op.max_grad_norm);
    if (o.warmup_steps < 0) throw bad("schedule.warmupSteps", "an integer >= 0", (double)o.warmup_steps);
    if (o.total_steps < 1) throw bad("schedule.totalSteps", "an integer >= 1", (double)o.total_steps);
    if (o.threads < 0) throw bad("threads", "an integer >= 0", o.threads);

    BackendProbe probe = probe_backends();
    if (o.backend == "cuda") {
      std::string why = probe.cuda_available
                            ? "a CUDA device is present but this build has no CUDA training kernels yet"
                            : probe.cuda_reason;
      throw EngineError("CNM_ERR_ENGINE_BACKEND",
                        "backend 'cuda' is not available: " + why +
                            ".\nPossible solutions:\n  - use backend 'auto' or 'cpu' (the CPU backend trains the "
                            "same model)\n  - on a GPU machine, check `nvidia-smi` and that the NVIDIA driver is "
                            "installed\n  - rebuild the addon where nvcc is on PATH: npm run build:addon");
    } else if (o.backend == "auto") {
      reason = probe.cuda_available
                   ? "backend 'auto': a CUDA device is present but this build has no CUDA training kernels yet; "
                     "using the CPU backend"
                   : "backend 'auto': CUDA not available (" + probe.cuda_reason + "); using the CPU backend";
    } else if (o.backend == "cpu") {
      reason = "backend 'cpu' requested";
    } else {
      throw EngineError("CNM_ERR_ENGINE_CONFIG", "backend: expected 'auto', 'cpu' or 'cuda', got '" + o.backend + "'");
    }
    threads = o.threads > 0 ? o.threads : default_threads();
    scaler_enabled = o.precision == "fp16-mixed";
    scale = scaler_enabled ? 65536.0 : 1.0;

    use_threads();
    const std::vector<ParamSpec> specs = build_param_specs(o.config, o.allowed);
    allocate_store(specs, w);
    init_store(w, o.seed, o.config.initializer_range);
    loaded.assign(specs.size(), false);
    std::vector<ParamSpec> tspecs;
    for (size_t i = 0; i < specs.size(); i++) {
      if (!specs[i].trainable) continue;
      trainable.push_back(i);
      ParamSpec s = specs[i];
      s.block = tspecs.size();
      s.offset = 0;
      tspecs.push_back(s);
    }
    allocate_store(tspecs, g);
    allocate_store(tspecs, m);
    allocate_store(tspecs, v);
    model = std::make_unique<CpuModel<float>>(o.config, o.recompute);
    view = make_view(o.config, w, &g);
    for (const auto& s : specs) {
      total_params += s.numel;
      if (s.trainable) trainable_params += s.numel;
    }
    update_memory();
  }

  void use_threads() const {
#ifdef _OPENMP
    omp_set_num_threads(threads);
#endif
  }

  double lr_at(int64_t k) const { return o.opt.lr * lr_multiplier(k, o.warmup_steps, o.total_steps); }

  void zero_grads() {
    for (auto& b : g.blocks) std::fill(b.begin(), b.end(), 0.0f);
    micro_steps = 0;
  }

  size_t index_or_throw(const std::string& name) const {
    auto it = w.index.find(name);
    if (it == w.index.end())
      throw input_error("no tensor named '" + name + "' in this engine (" + std::to_string(w.specs.size()) +
                        " tensors; routed-expert keys exist only for allowed experts)");
    return it->second;
  }

  // Forward of one checked batch, and backward of s·mean loss into the accumulators when
  // `backward`. No position scored → NaN loss and nothing run.
  LossResult run_batch(const std::vector<int32_t>& tokens, const std::vector<int32_t>& labels, int64_t batch,
                       int64_t seq, bool backward) {
    const int64_t count = CpuModel<float>::count_targets(labels.data(), batch, seq);
    LossResult r;
    r.tokens = count;
    if (count == 0) {
      r.loss = std::numeric_limits<double>::quiet_NaN();
      return r;
    }
    LossSum ls = model->run(view, tokens.data(), labels.data(), batch, seq, backward,
                            backward ? scale / (double)count : 0.0);
    update_memory();
    r.loss = ls.sum / (double)count;
    return r;
  }
};

Engine::Engine(const EngineOptions& opts) : impl_(std::make_unique<EngineImpl>(opts)) {}
Engine::~Engine() = default;

void Engine::check_batch(const std::vector<int32_t>& tokens, const std::vector<int32_t>& labels, int64_t batch,
                         int64_t seq) const {
  const ModelConfig& c = impl_->o.config;
  if (batch < 1) throw input_error("batch: expected an integer >= 1, got " + std::to_string(batch));
  if (seq < 1) throw input_error("seq: expected an integer >= 1, got " + std::to_string(seq));
  if (seq > c.max_position_embeddings)
    throw input_error("seq: " + std::to_string(seq) + " exceeds max_position_embeddings " +
                      std::to_string(c.max_position_embeddings));
  if (batch * seq > (int64_t(1) << 30)) throw input_error("batch·seq is too large");
  const int64_t n = batch * seq;
  if ((int64_t)tokens.size() != n)
    throw input_error("tokens: length " + std::to_string(tokens.size()) + " does not match batch·seq = " +
                      std::to_string(batch) + "·" + std::to_string(seq) + " = " + std::to_string(n));
  if ((int64_t)labels.size() != n)
    throw input_error("labels: length " + std::to_string(labels.size()) + " does not match batch·seq = " +
                      std::to_string(batch) + "·" + std::to_string(seq) + " = " + std::to_string(n));
  for (int64_t i = 0; i < n; i++) {
    if (tokens[i] < 0 || tokens[i] >= c.vocab_size)
      throw input_error("tokens[" + std::to_string(i) + "] = " + std::to_string(tokens[i]) +
                        " is out of range [0, vocab_size = " + std::to_string(c.vocab_size) + ")");
    if (labels[i] != -100 && (labels[i] < 0 || labels[i] >= c.vocab_size))
      throw input_error("labels[" + std::to_string(i) + "] = " + std::to_string(labels[i]) +
                        " is out of range: expected -100 or [0, vocab_size = " + std::to_string(c.vocab_size) + ")");
  }
}

LoadResult Engine::load_weights(const std::vector<TensorIn>& entries) {
  std::lock_guard<std::mutex> lock(mu_);
  EngineImpl& E = *impl_;
  E.use_threads();
  LoadResult res;
  // Pass 1: validate everything (names, dtypes, shapes, sizes, finiteness) without writing.
  std::vector<std::pair<size_t, const TensorIn*>> todo;
  std::set<std::string> seen;
  for (const TensorIn& t : entries) {
    if (!seen.insert(t.name).second) throw input_error("tensor '" + t.name + "' is given twice");
    auto it = E.w.index.find(t.name);
    if (it == E.w.index.end()) {
      res.ignored.push_back(t.name);
      continue;
    }
    const ParamSpec& s = E.w.specs[it->second];
    const size_t es = dtype_size(t.dtype);
    if (es == 0)
      throw input_error("tensor '" + t.name + "': dtype '" + t.dtype +
                        "' is not supported (expected float32, float16 or bfloat16)");
    if (t.shape != s.shape)
      throw input_error("tensor '" + t.name + "': shape " + shape_str(t.shape) + " does not match the model's " +
                        shape_str(s.shape));
    const size_t want = (size_t)s.numel * es;
    if (t.size != want)
      throw input_error("tensor '" + t.name + "': " + std::to_string(t.size) + " bytes given, expected " +
                        std::to_string(want) + " for shape " + shape_str(s.shape) + " " + t.dtype);
    const int64_t bad = first_non_finite(t.data, t.dtype, s.numel);
    if (bad >= 0)
      throw input_error("tensor '" + t.name + "': element " + std::to_string(bad) +
                        " is not finite (NaN/inf weights are refused)");
    todo.emplace_back(it->second, &t);
  }
  // Pass 2: convert in place (cannot fail).
  for (const auto& [idx, t] : todo) {
    bytes_to_float(t->data, t->dtype, E.w.specs[idx].numel, E.w.data(idx));
    E.loaded[idx] = true;
  }
  res.loaded = (int64_t)todo.size();
  for (size_t i = 0; i < E.w.specs.size(); i++)
    if (!E.loaded[i]) res.missing.push_back(E.w.specs[i].name);
  return res;
}

std::vector<TensorBytes> Engine::export_weights(const ExportFilter& f) {
  std::lock_guard<std::mutex> lock(mu_);
  EngineImpl& E = *impl_;
  E.use_threads();
  if (dtype_size(f.dtype) == 0)
    throw input_error("exportWeights: dtype '" + f.dtype + "' is not supported (expected float32, float16 or bfloat16)");
  std::vector<size_t> idx;
  if (f.has_names) {
    for (const std::string& n : f.names) idx.push_back(E.index_or_throw(n));
  } else {
    for (size_t i = 0; i < E.w.specs.size(); i++) idx.push_back(i);
  }
  std::vector<TensorBytes> out;
  for (size_t i : idx) {
    const ParamSpec& s = E.w.specs[i];
    if (f.trainable_only && !s.trainable) continue;
    out.push_back(to_tensor(s.name, s.shape, E.w.data(i), s.numel, f.dtype));
  }
  return out;
}

LossResult Engine::train_step(const std::vector<int32_t>& tokens, const std::vector<int32_t>& labels, int64_t batch,
                              int64_t seq) {
  check_batch(tokens, labels, batch, seq);
  std::lock_guard<std::mutex> lock(mu_);
  EngineImpl& E = *impl_;
  E.use_threads();
  E.micro_steps++;
  return E.run_batch(tokens, labels, batch, seq, true);
}

LossResult Engine::eval_loss(const std::vector<int32_t>& tokens, const std::vector<int32_t>& labels, int64_t batch,
                             int64_t seq) {
  check_batch(tokens, labels, batch, seq);
  std::lock_guard<std::mutex> lock(mu_);
  EngineImpl& E = *impl_;
  E.use_threads();
  return E.run_batch(tokens, labels, batch, seq, false);
}

OptStepResult Engine::optimizer_step(int64_t accumulation_steps) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto t_start = std::chrono::steady_clock::now();
  struct Report {
    std::chrono::steady_clock::time_point t0;
    ~Report() {
      if (std::getenv("CONNITO_ENGINE_PROFILE"))
        std::fprintf(stderr, "[engine profile] optimizer_step %.1f ms\n",
                     std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
  } report{t_start};
  EngineImpl& E = *impl_;
  E.use_threads();
  if (accumulation_steps < 0)
    throw input_error("accumulationSteps: expected an integer >= 1, got " + std::to_string(accumulation_steps));
  OptStepResult r;
  r.scale_before = r.scale_after = E.scale;
  r.lr = E.lr_at(E.step);
  r.step = E.step;
  if (E.micro_steps == 0) {  // nothing accumulated: like the reference's "no gradients left"
    r.skipped = true;
    return r;
  }
  const int64_t ga = accumulation_steps > 0 ? accumulation_steps : E.micro_steps;
  const float inv = (float)(1.0 / (E.scale * (double)ga));
  // Pass 1 (read only): unscaled norm, sum and finiteness per tensor.
  double sumsq = 0.0, sum = 0.0;
  for (size_t t = 0; t < E.trainable.size(); t++) {
    const float* gr = E.g.data(t);
    const int64_t n = E.g.specs[t].numel;
    const int64_t chunks = (n + kChunk - 1) / kChunk;
    double ss = 0.0, s1 = 0.0;
    int64_t bad = 0;
#pragma omp parallel for schedule(static) reduction(+ : ss, s1, bad) if (chunks > 1)
    for (int64_t ci = 0; ci < chunks; ci++) {
      const int64_t a = ci * kChunk;
      const GradStats st = grad_stats_f32(gr + a, std::min(kChunk, n - a), inv);
      ss += st.sumsq;
      s1 += st.sum;
      bad += st.non_finite;
    }
    const bool finite = bad == 0;
    if (!finite) r.non_finite.push_back(E.g.specs[t].name);
    sumsq += ss;
    sum += s1;
  }
  r.grad_norm = std::sqrt(sumsq);
  r.grad_sum = sum;
  if (!r.non_finite.empty() || !std::isfinite(r.grad_norm)) {
    r.skipped = true;
    if (E.scaler_enabled) {
      E.scale *= 0.5;
      E.good_steps = 0;
    }
    r.scale_after = E.scale;
    E.zero_grads();
    return r;
  }
  // Pass 2: unscale, clip, AdamW, and clear the accumulator in one sweep.
  const double clip = E.o.opt.max_grad_norm / (r.grad_norm + 1e-6);
  const float gscale = clip < 1.0 ? inv * (float)clip : inv;
  const double lr = E.lr_at(E.step);
  const int64_t t = E.step + 1;
  AdamWCoeffs c;
  c.decay = (float)(1.0 - lr * E.o.opt.weight_decay);
  c.beta1 = (float)E.o.opt.beta1;
  c.one_minus_beta1 = (float)(1.0 - E.o.opt.beta1);
  c.beta2 = (float)E.o.opt.beta2;
  c.one_minus_beta2 = (float)(1.0 - E.o.opt.beta2);
  c.step_size = (float)(lr / (1.0 - std::pow(E.o.opt.beta1, (double)t)));
  c.bc2_sqrt = (float)std::sqrt(1.0 - std::pow(E.o.opt.beta2, (double)t));
  c.eps = (float)E.o.opt.eps;
  double psum = 0.0;
  for (size_t k = 0; k < E.trainable.size(); k++) {
    float* p = E.w.data(E.trainable[k]);
    float* gr = E.g.data(k);
    float* mm = E.m.data(k);
    float* vv = E.v.data(k);
    const int64_t n = E.g.specs[k].numel;
    const int64_t chunks = (n + kChunk - 1) / kChunk;
    double ps = 0.0;
#pragma omp parallel for schedule(static) reduction(+ : ps) if (chunks > 1)
    for (int64_t ci = 0; ci < chunks; ci++) {
      const int64_t a = ci * kChunk;
      ps += adamw_step_f32(p + a, gr + a, mm + a, vv + a, std::min(kChunk, n - a), gscale, c);
    }
    psum += ps;
  }
  E.micro_steps = 0;
  E.step = t;
  if (E.scaler_enabled) {
    if (++E.good_steps >= 2000) {
      E.scale *= 2.0;
      E.good_steps = 0;
    }
  }
  r.step = E.step;
  r.lr = lr;
  r.scale_after = E.scale;
  r.param_sum = psum;
  return r;
}

std::vector<TensorBytes> Engine::export_gradients(int64_t accumulation_steps) {
  std::lock_guard<std::mutex> lock(mu_);
  EngineImpl& E = *impl_;
  const int64_t ga = accumulation_steps > 0 ? accumulation_steps : std::max<int64_t>(1, E.micro_steps);
  const float inv = (float)(1.0 / (E.scale * (double)ga));
  std::vector<TensorBytes> out;
  for (size_t k = 0; k < E.trainable.size(); k++) {
    const ParamSpec& s = E.g.specs[k];
    std::vector<float> tmp((size_t)s.numel);
    const float* gr = E.g.data(k);
    for (int64_t i = 0; i < s.numel; i++) tmp[i] = gr[i] * inv;
    out.push_back(to_tensor(s.name, s.shape, tmp.data(), s.numel, "float32"));
  }
  return out;
}

OptimizerState Engine::export_optimizer_state() {
  std::lock_guard<std::mutex> lock(mu_);
  EngineImpl& E = *impl_;
  OptimizerState s;
  s.step = E.step;
  s.scale = E.scale;
  s.good_steps = E.good_steps;
  for (size_t k = 0; k < E.trainable.size(); k++) {
    const ParamSpec& sp = E.m.specs[k];
    s.tensors.push_back(to_tensor(sp.name + ".exp_avg", sp.shape, E.m.data(k), sp.numel, "float32"));
    s.tensors.push_back(to_tensor(sp.name + ".exp_avg_sq", sp.shape, E.v.data(k), sp.numel, "float32"));
  }
  return s;
}

void Engine::import_optimizer_state(const OptimizerStateIn& s) {
  std::lock_guard<std::mutex> lock(mu_);
  EngineImpl& E = *impl_;
  if (s.step < 0) throw input_error("optimizer state: step must be an integer >= 0, got " + std::to_string(s.step));
  if (!(s.scale > 0) || !std::isfinite(s.scale))
    throw input_error("optimizer state: scale must be a finite number > 0, got " + std::to_string(s.scale));
  if (!E.scaler_enabled && s.scale != 1.0)
    throw input_error("optimizer state: scale is " + std::to_string(s.scale) + " but precision '" + E.o.precision +
                      "' has no loss scaler (expected 1)");
  if (s.good_steps < 0 || s.good_steps >= 2000)
    throw input_error("optimizer state: goodSteps must be in [0, 2000), got " + std::to_string(s.good_steps));
  std::map<std::string, std::pair<size_t, int>> want;  // name -> (trainable index, 0 = m / 1 = v)
  for (size_t k = 0; k < E.trainable.size(); k++) {
    want[E.m.specs[k].name + ".exp_avg"] = {k, 0};
    want[E.m.specs[k].name + ".exp_avg_sq"] = {k, 1};
  }
  std::map<std::string, const TensorIn*> got;
  for (const TensorIn& t : s.tensors) {
    auto it = want.find(t.name);
    if (it == want.end())
      throw input_error("optimizer state: unexpected tensor '" + t.name +
                        "' (expected '<trainable tensor>.exp_avg' / '.exp_avg_sq' of this engine's experts)");
    if (!got.emplace(t.name, &t).second) throw input_error("optimizer state: tensor '" + t.name + "' is given twice");
    const ParamSpec& sp = E.m.specs[it->second.first];
    if (t.dtype != "float32")
      throw input_error("optimizer state: tensor '" + t.name + "': dtype '" + t.dtype + "', expected float32");
    if (t.shape != sp.shape)
      throw input_error("optimizer state: tensor '" + t.name + "': shape " + shape_str(t.shape) + ", expected " +
                        shape_str(sp.shape));
    if (t.size != (size_t)sp.numel * 4)
      throw input_error("optimizer state: tensor '" + t.name + "': " + std::to_string(t.size) + " bytes, expected " +
                        std::to_string(sp.numel * 4));
    const int64_t bad = first_non_finite(t.data, "float32", sp.numel);
    if (bad >= 0)
      throw input_error("optimizer state: tensor '" + t.name + "': element " + std::to_string(bad) + " is not finite");
    if (it->second.second == 1) {
      for (int64_t i = 0; i < sp.numel; i++) {
        float x;
        std::memcpy(&x, t.data + 4 * i, 4);
        if (x < 0) throw input_error("optimizer state: tensor '" + t.name + "': element " + std::to_string(i) +
                                     " is negative (exp_avg_sq must be >= 0)");
      }
    }
  }
  for (const auto& [name, where] : want)
    if (!got.count(name)) throw input_error("optimizer state: tensor '" + name + "' is missing");
  for (const auto& [name, t] : got) {
    const auto& [k, which] = want.at(name);
    std::memcpy(which == 0 ? E.m.data(k) : E.v.data(k), t->data, t->size);
  }
  E.step = s.step;
  E.scale = s.scale;
  E.good_steps = s.good_steps;
}

EngineInfo Engine::info() {
  EngineImpl& E = *impl_;
  EngineInfo i;
  i.backend = "cpu";
  i.reason = E.reason;
  i.threads = E.threads;
  i.gemm_kernel = gemm_kernel_name();
  i.precision = E.o.precision;
  i.device = cpu_model_name() + " (" + std::to_string(E.threads) + " threads, " + i.gemm_kernel + " GEMM)";
  i.total_params = E.total_params;
  i.trainable_params = E.trainable_params;
  i.memory_bytes = E.memory_bytes.load();
  return i;
}

}  // namespace connito
