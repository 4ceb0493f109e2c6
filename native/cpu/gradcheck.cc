// Finite-difference gradient checks in double precision (see gradcheck.h). Each kernel check
// builds random inputs, a random upstream gradient g and the scalar f = Σ g ⊙ op(x), then compares
// the kernel's backward with central differences of its forward.
#include "gradcheck.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <stdexcept>
#include <utility>

#include "cpu_ops.h"
#include "gemm_cpu.h"
#include "model_cpu.h"
#include "param_store.h"

namespace connito {
namespace {

struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9e3779b97f4a7c15ull + 0x1234567ull) {}
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double uniform() { return ((next() >> 11) + 0.5) * (1.0 / 9007199254740992.0); }
  double normal() { return std::sqrt(-2.0 * std::log(uniform())) * std::cos(6.283185307179586 * uniform()); }
  int64_t below(int64_t n) { return (int64_t)(next() % (uint64_t)n); }
};

std::vector<double> randn(Rng& r, int64_t n, double scale = 1.0) {
  std::vector<double> v((size_t)n);
  for (auto& x : v) x = r.normal() * scale;
  return v;
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); i++) s += a[i] * b[i];
  return s;
}

// f returns (value, valid); valid = false when the perturbation changed a discrete choice.
using Objective = std::function<std::pair<double, bool>()>;

GradCheckResult fd_check(const std::string& op, double* x, const double* analytic, int64_t n, const Objective& f,
                         int64_t max_coords, Rng& rng) {
  GradCheckResult r;
  r.op = op;
  std::vector<int64_t> coords;
  if (max_coords <= 0 || max_coords >= n) {
    for (int64_t i = 0; i < n; i++) coords.push_back(i);
  } else {
    for (int64_t k = 0; k < max_coords; k++) coords.push_back(rng.below(n));
  }
  for (int64_t i : coords) {
    const double xi = x[i];
    const double h = 1e-5 * std::max(1.0, std::fabs(xi));
    x[i] = xi + h;
    auto [fp, okp] = f();
    x[i] = xi - h;
    auto [fm, okm] = f();
    x[i] = xi;
    if (!okp || !okm) {
      r.skipped++;
      continue;
    }
    const double num = (fp - fm) / (2 * h);
    const double a = analytic[i];
    const double abs_err = std::fabs(a - num);
    const double rel_err = abs_err / std::max({std::fabs(a), std::fabs(num), 1e-8});
    r.max_abs_err = std::max(r.max_abs_err, abs_err);
    r.max_rel_err = std::max(r.max_rel_err, rel_err);
    r.max_abs_grad = std::max(r.max_abs_grad, std::fabs(a));
    r.checked++;
  }
  return r;
}

// A YaRN setting with every branch active: factor > 1, ramp inside the rotary dims, and
// mscale ≠ mscale_all_dim so the attention factor is not 1.
ModelConfig rope_test_config(int64_t dr) {
  ModelConfig c;
  c.qk_nope_head_dim = 4;
  c.qk_rope_head_dim = dr;
  c.rope_theta = 100.0;
  c.max_position_embeddings = 256;
  c.rope.type = "yarn";
  c.rope.factor = 4.0;
  c.rope.original_max_position_embeddings = 16;
  c.rope.beta_fast = 8;
  c.rope.beta_slow = 1;
  c.rope.mscale = 1.0;
  c.rope.mscale_all_dim = 0.5;
  return c;
}

std::vector<GradCheckResult> check_embedding(uint64_t seed) {
  Rng rng(seed);
  const int64_t V = 11, D = 5, N = 17;
  std::vector<int32_t> tok((size_t)N);
  for (auto& t : tok) t = (int32_t)rng.below(V);
  tok[3] = tok[5];  // a repeated id
  std::vector<double> table = randn(rng, V * D), g = randn(rng, N * D), out((size_t)(N * D)),
                      dtable((size_t)(V * D), 0.0);
  embedding_backward(tok.data(), g.data(), dtable.data(), N, D);
  Objective f = [&] {
    embedding_forward(tok.data(), table.data(), out.data(), N, D);
    return std::make_pair(dot(out, g), true);
  };
  return {fd_check("embedding", table.data(), dtable.data(), V * D, f, 0, rng)};
}

std::vector<GradCheckResult> check_rmsnorm(uint64_t seed) {
  Rng rng(seed);
  const int64_t N = 6, D = 13;
  std::vector<double> x = randn(rng, N * D), w = randn(rng, D, 0.5), g = randn(rng, N * D);
  for (auto& v : w) v += 1.0;
  std::vector<double> y((size_t)(N * D)), rstd((size_t)N), dx((size_t)(N * D));
  rmsnorm_forward(x.data(), w.data(), y.data(), rstd.data(), N, D, 1e-6);
  rmsnorm_backward(g.data(), x.data(), w.data(), rstd.data(), dx.data(), N, D, false);
  Objective f = [&] {
    rmsnorm_forward(x.data(), w.data(), y.data(), rstd.data(), N, D, 1e-6);
    return std::make_pair(dot(y, g), true);
  };
  // Strided variant (the kv_a_layernorm reads the first R columns of [R + dr] rows).
  const int64_t ld = D + 3;
  std::vector<double> xs = randn(rng, N * ld), y2((size_t)(N * D)), dxs((size_t)(N * ld), 0.0);
  rmsnorm_forward(xs.data(), w.data(), y2.data(), rstd.data(), N, D, 1e-6, ld, D);
  rmsnorm_backward(g.data(), xs.data(), w.data(), rstd.data(), dxs.data(), N, D, false, ld, ld);
  Objective f2 = [&] {
    rmsnorm_forward(xs.data(), w.data(), y2.data(), rstd.data(), N, D, 1e-6, ld, D);
    return std::make_pair(dot(y2, g), true);
  };
  GradCheckResult r1 = fd_check("rmsnorm", x.data(), dx.data(), N * D, f, 0, rng);
  // Only the first D columns of each strided row take part.
  GradCheckResult r2;
  r2.op = "rmsnorm.strided";
  for (int64_t n = 0; n < N; n++) {
    GradCheckResult part = fd_check("rmsnorm.strided", xs.data() + n * ld, dxs.data() + n * ld, D, f2, 0, rng);
    r2.checked += part.checked;
    r2.max_abs_err = std::max(r2.max_abs_err, part.max_abs_err);
    r2.max_rel_err = std::max(r2.max_rel_err, part.max_rel_err);
    r2.max_abs_grad = std::max(r2.max_abs_grad, part.max_abs_grad);
  }
  return {r1, r2};
}

std::vector<GradCheckResult> check_rope(uint64_t seed) {
  Rng rng(seed);
  const int64_t B = 2, S = 9, heads = 3, dn = 4, dr = 8, ld = heads * (dn + dr);
  const int64_t N = B * S;
  ModelConfig c = rope_test_config(dr);
  RopeTables t = derive_rope(c);
  std::vector<double> cs, sn;
  rope_tables(t.inv_freq, t.attention_factor, S, cs, sn);
  std::vector<double> x = randn(rng, N * ld), g = randn(rng, N * ld), y((size_t)(N * ld));
  // Only the rotated slice passes a gradient through this op; the nope part is left alone.
  for (int64_t n = 0; n < N; n++)
    for (int64_t h = 0; h < heads; h++)
      for (int64_t i = 0; i < dn; i++) g[n * ld + h * (dn + dr) + i] = 0.0;
  std::vector<double> dx = g;
  rope_backward(dx.data(), N, S, heads, ld, dn + dr, dn, dr, cs.data(), sn.data());
  Objective f = [&] {
    y = x;
    rope_forward(y.data(), N, S, heads, ld, dn + dr, dn, dr, cs.data(), sn.data());
    return std::make_pair(dot(y, g), true);
  };
  return {fd_check("rope", x.data(), dx.data(), N * ld, f, 0, rng)};
}

std::vector<GradCheckResult> check_attention(uint64_t seed) {
  Rng rng(seed);
  // S = 70 crosses the 64-row block boundary of attention.cc.
  AttnDims d{2, 70, 2, 4, 4, 3, 0.0};
  d.scale = 1.0 / std::sqrt((double)(d.dn + d.dr));
  const int64_t N = d.B * d.S;
  std::vector<double> q = randn(rng, N * d.H * (d.dn + d.dr)), kv = randn(rng, N * d.H * (d.dn + d.dv)),
                      kpe = randn(rng, N * d.dr), g = randn(rng, N * d.H * d.dv);
  std::vector<double> o((size_t)(N * d.H * d.dv)), lse((size_t)(d.B * d.H * d.S));
  std::vector<double> dq(q.size()), dkv(kv.size()), dkpe(kpe.size());
  attention_forward(d, q.data(), kv.data(), kpe.data(), o.data(), lse.data());
  attention_backward(d, q.data(), kv.data(), kpe.data(), o.data(), lse.data(), g.data(), dq.data(), dkv.data(),
                     dkpe.data());
  Objective f = [&] {
    attention_forward(d, q.data(), kv.data(), kpe.data(), o.data(), lse.data());
    return std::make_pair(dot(o, g), true);
  };
  return {fd_check("attention.q", q.data(), dq.data(), (int64_t)q.size(), f, 400, rng),
          fd_check("attention.kv", kv.data(), dkv.data(), (int64_t)kv.size(), f, 400, rng),
          fd_check("attention.k_pe", kpe.data(), dkpe.data(), (int64_t)kpe.size(), f, 300, rng)};
}

std::vector<GradCheckResult> check_swiglu(uint64_t seed) {
  Rng rng(seed);
  const int64_t N = 5, W = 7;
  std::vector<double> gu = randn(rng, N * 2 * W, 2.0), g = randn(rng, N * W), a((size_t)(N * W)),
                      da = g, dgu((size_t)(N * 2 * W));
  swiglu_backward(da.data(), gu.data(), dgu.data(), N, W);
  Objective f = [&] {
    swiglu_forward(gu.data(), a.data(), N, W);
    return std::make_pair(dot(a, g), true);
  };
  return {fd_check("swiglu", gu.data(), dgu.data(), N * 2 * W, f, 0, rng)};
}

std::vector<GradCheckResult> check_router(uint64_t seed) {
  Rng rng(seed);
  const int64_t N = 9, E = 8, K = 2;
  const double scaling = 1.5;
  const std::vector<int64_t> allowed = {1, 2, 5, 6};
  std::vector<double> logits = randn(rng, N * E, 1.5), probs((size_t)(N * E)), c = randn(rng, N * K),
                      dlogits((size_t)(N * E));
  Routing base;
  router_forward(logits.data(), probs.data(), N, E, K, allowed, scaling, base);
  router_backward(probs.data(), base, c.data(), dlogits.data(), E, scaling);
  Objective f = [&] {
    Routing r;
    router_forward(logits.data(), probs.data(), N, E, K, allowed, scaling, r);
    double s = 0;
    for (int64_t i = 0; i < N * K; i++) s += c[i] * r.weight[i];
    return std::make_pair(s, r.expert == base.expert);
  };
  return {fd_check("router", logits.data(), dlogits.data(), N * E, f, 0, rng)};
}

std::vector<GradCheckResult> check_cross_entropy(uint64_t seed) {
  Rng rng(seed);
  const int64_t n = 6, V = 19;
  std::vector<double> z = randn(rng, n * V, 2.0);
  std::vector<int32_t> tg((size_t)n);
  for (auto& t : tg) t = (int32_t)rng.below(V);
  std::vector<double> dz = z, tmp;
  cross_entropy_block(dz.data(), tg.data(), n, V, 1.0);
  Objective f = [&] {
    tmp = z;
    return std::make_pair(cross_entropy_block(tmp.data(), tg.data(), n, V, 0.0), true);
  };
  return {fd_check("cross_entropy", z.data(), dz.data(), n * V, f, 0, rng)};
}

// Not a gradient check: the float GEMM (the kernel chosen for this CPU, or the one forced with
// CONNITO_GEMM_KERNEL) against a double-precision reference, for every transpose combination,
// shapes that cross the micro-tile and cache-block edges, alpha ≠ 1 and beta ∈ {0, 0.5} (beta = 0
// must ignore NaN in C). max_rel_err = max |c − ref| / max |ref| over each combination.
std::vector<GradCheckResult> check_gemm(uint64_t seed) {
  Rng rng(seed);
  std::vector<GradCheckResult> out;
  const int64_t shapes[][3] = {{1, 1, 1}, {13, 37, 5}, {97, 33, 300}, {150, 500, 270}, {24, 1100, 64}, {300, 17, 520}};
  for (int combo = 0; combo < 4; combo++) {
    const bool ta = combo & 1, tb = combo & 2;
    GradCheckResult r;
    r.op = std::string("gemm.") + (ta ? "T" : "N") + (tb ? "T" : "N");
    for (const auto& sh : shapes) {
      const int64_t M = sh[0], N = sh[1], K = sh[2];
      std::vector<float> A((size_t)(M * K)), B((size_t)(K * N)), C((size_t)(M * N));
      for (auto& x : A) x = (float)rng.normal();
      for (auto& x : B) x = (float)rng.normal();
      const int64_t lda = ta ? M : K, ldb = tb ? K : N;
      for (float beta : {0.0f, 0.5f}) {
        for (auto& x : C) x = beta == 0.0f ? std::nanf("") : (float)rng.normal();
        std::vector<float> C0 = C;
        gemm(ta, tb, M, N, K, 0.75f, A.data(), lda, B.data(), ldb, beta, C.data(), N);
        double maxref = 0, maxerr = 0;
        for (int64_t i = 0; i < M; i++)
          for (int64_t j = 0; j < N; j++) {
            double acc = 0;
            for (int64_t k = 0; k < K; k++)
              acc += (double)(ta ? A[k * lda + i] : A[i * lda + k]) * (double)(tb ? B[j * ldb + k] : B[k * ldb + j]);
            const double ref = 0.75 * acc + (beta == 0.0f ? 0.0 : (double)beta * (double)C0[i * N + j]);
            maxref = std::max(maxref, std::fabs(ref));
            const double err = std::fabs((double)C[i * N + j] - ref);
            maxerr = std::isfinite(err) ? std::max(maxerr, err) : INFINITY;
            r.checked++;
          }
        r.max_abs_err = std::max(r.max_abs_err, maxerr);
        r.max_rel_err = std::max(r.max_rel_err, maxerr / std::max(maxref, 1e-30));
        r.max_abs_grad = std::max(r.max_abs_grad, maxref);
      }
    }
    out.push_back(r);
  }
  return out;
}

}  // namespace

std::vector<GradCheckResult> gradcheck_op(const std::string& op, uint64_t seed) {
  if (op == "embedding") return check_embedding(seed);
  if (op == "rmsnorm") return check_rmsnorm(seed);
  if (op == "rope") return check_rope(seed);
  if (op == "attention") return check_attention(seed);
  if (op == "swiglu") return check_swiglu(seed);
  if (op == "router") return check_router(seed);
  if (op == "cross_entropy") return check_cross_entropy(seed);
  if (op == "gemm") return check_gemm(seed);
  throw std::invalid_argument("unknown gradient-check op '" + op +
                              "' (expected embedding, rmsnorm, rope, attention, swiglu, router, cross_entropy, gemm)");
}

std::vector<GradCheckResult> gradcheck_model(const ModelConfig& c, AllowedExperts allowed, int64_t batch, int64_t seq,
                                             uint64_t seed, int64_t max_coords, bool recompute) {
  std::string err = validate_config(c);
  if (!err.empty()) throw std::invalid_argument("config: " + err);
  err = validate_allowed(c, allowed);
  if (!err.empty()) throw std::invalid_argument(err);
  Rng rng(seed);
  const std::vector<ParamSpec> specs = build_param_specs(c, allowed);
  ParamStore<double> w, g;
  allocate_store(specs, w);
  init_store(w, seed, c.initializer_range);
  for (size_t i = 0; i < specs.size(); i++) {
    if (!specs[i].is_norm) continue;
    double* d = w.data(i);
    for (int64_t j = 0; j < specs[i].numel; j++) d[j] = 1.0 + 0.2 * rng.normal();
  }
  std::vector<ParamSpec> tspecs;
  for (const auto& s : specs)
    if (s.trainable) {
      ParamSpec t = s;
      t.block = tspecs.size();
      t.offset = 0;
      tspecs.push_back(t);
    }
  allocate_store(tspecs, g);
  const int64_t N = batch * seq;
  std::vector<int32_t> tokens((size_t)N), labels((size_t)N);
  for (int64_t i = 0; i < N; i++) {
    tokens[i] = (int32_t)rng.below(c.vocab_size);
    labels[i] = rng.uniform() < 0.15 ? -100 : (int32_t)rng.below(c.vocab_size);
  }
  CpuModel<double> model(c, recompute);
  ModelView<double> view = make_view(c, w, &g);
  const int64_t count = CpuModel<double>::count_targets(labels.data(), batch, seq);
  if (count == 0) throw std::invalid_argument("gradcheck_model: the random labels left no target; change the seed");
  model.run(view, tokens.data(), labels.data(), batch, seq, true, 1.0 / (double)count);
  ModelView<double> fview = make_view<double>(c, w, nullptr);
  Objective f = [&] {
    LossSum ls = model.run(fview, tokens.data(), labels.data(), batch, seq, false, 0.0);
    return std::make_pair(ls.sum / (double)count, true);
  };
  std::vector<GradCheckResult> out;
  for (size_t k = 0; k < tspecs.size(); k++) {
    double* x = w.find(tspecs[k].name);
    out.push_back(fd_check("model:" + tspecs[k].name, x, g.data(k), tspecs[k].numel, f, max_coords, rng));
  }
  return out;
}

}  // namespace connito
