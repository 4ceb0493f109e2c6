#!/usr/bin/python3
"""Independent PyTorch reference of the Connito miner model (PROTOCOL.md §9), with autograd.

Written from the protocol text and the transformers DeepseekV2 semantics it cites, not from the
engine's C++: MLA attention (plain q_proj or q_a/q_b LoRA), interleaved-complex RoPE with YaRN
frequencies and attention factor, masked top-k routing (non-local experts replaced by -1e4), SwiGLU
routed experts stacked [gate; up], shared experts, dense MLP, lm_head and next-token cross entropy
with ignore index -100. Everything runs in float32 on the CPU.

Usage: deepseek_v2_ref.py CASE_DIR
  CASE_DIR/case.json   {"config", "allowedExperts", "tensors": [{"name", "shape", "file"}],
                        "batches": [{"batch", "seq", "tokens", "labels"}],
                        "optimizer": {...}, "schedule": {...}, "replay": [[batch index, ...], ...]}
  CASE_DIR/<file>      raw little-endian float32 weights (written by the test; nothing is unpickled)
Writes CASE_DIR/result.json and CASE_DIR/grad/<name>.bin, CASE_DIR/final/<name>.bin.
  result.json: {"loss": loss of batches[0], "tokens": n, "steps": [{"lr", "grad_norm", "losses"}]}
  grad/: gradients of every trainable expert tensor for batches[0] (mean loss)
  final/: trainable tensors after replaying the optimizer steps (AdamW + clipping + LambdaLR)
"""
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
import torch.utils.checkpoint


def rms_norm(x, w, eps):
    xf = x.float()
    var = xf.pow(2).mean(-1, keepdim=True)
    return w * (xf * torch.rsqrt(var + eps))


def yarn_inv_freq(cfg):
    """inv_freq and attention factor of transformers' _compute_yarn_parameters (rotary dim = qk_rope_head_dim)."""
    dim = cfg["qk_rope_head_dim"]
    rs = cfg.get("rope_scaling") or {}
    base = cfg.get("rope_theta", 10000.0)
    pos_freqs = base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim)
    rtype = rs.get("type", rs.get("rope_type", "default")) if rs else "default"
    if rtype != "yarn":
        return 1.0 / pos_freqs, 1.0
    factor = rs["factor"]
    orig = rs.get("original_max_position_embeddings") or cfg["max_position_embeddings"]

    def get_mscale(scale, m=1.0):
        return 1.0 if scale <= 1 else 0.1 * m * math.log(scale) + 1.0

    if rs.get("attention_factor") is not None:
        attention_factor = rs["attention_factor"]
    elif rs.get("mscale") and rs.get("mscale_all_dim"):
        attention_factor = get_mscale(factor, rs["mscale"]) / get_mscale(factor, rs["mscale_all_dim"])
    else:
        attention_factor = get_mscale(factor)
    beta_fast = rs.get("beta_fast") or 32
    beta_slow = rs.get("beta_slow") or 1

    def correction_dim(rot):
        return (dim * math.log(orig / (rot * 2 * math.pi))) / (2 * math.log(base))

    low = max(math.floor(correction_dim(beta_fast)), 0)
    high = min(math.ceil(correction_dim(beta_slow)), dim - 1)
    if low == high:
        high += 0.001
    ramp = torch.clamp((torch.arange(dim // 2, dtype=torch.float32) - low) / (high - low), 0, 1)
    extrapolation = 1 - ramp
    inv_extra = 1.0 / pos_freqs
    inv_inter = 1.0 / (factor * pos_freqs)
    inv_freq = inv_inter * (1 - extrapolation) + inv_extra * extrapolation
    return inv_freq, attention_factor


def rotary(x, freqs_cis):
    """Interleaved complex RoPE: pairs (2i, 2i+1) are (re, im)."""
    xc = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
    return torch.view_as_real(xc * freqs_cis).flatten(-2)


class Reference:
    def __init__(self, cfg, allowed, weights):
        self.c = cfg
        self.allowed = {int(k): sorted(v) for k, v in allowed.items()}
        self.w = weights  # name -> tensor (trainable ones require grad)

    def is_moe(self, layer):
        c = self.c
        n = c.get("n_routed_experts") or 0
        freq = c.get("moe_layer_freq") or 1
        return n > 0 and layer >= c.get("first_k_dense_replace", 0) and layer % freq == 0

    def attention(self, p, x, freqs_cis):
        c, w = self.c, self.w
        B, S, _ = x.shape
        nH = c["num_attention_heads"]
        dn, dr, dv = c["qk_nope_head_dim"], c["qk_rope_head_dim"], c["v_head_dim"]
        R = c["kv_lora_rank"]
        if c.get("q_lora_rank"):
            q = rms_norm(x @ w[p + "self_attn.q_a_proj.weight"].T, w[p + "self_attn.q_a_layernorm.weight"], 1e-6)
            q = q @ w[p + "self_attn.q_b_proj.weight"].T
        else:
            q = x @ w[p + "self_attn.q_proj.weight"].T
        q = q.view(B, S, nH, dn + dr).transpose(1, 2)
        q_nope, q_pe = torch.split(q, [dn, dr], dim=-1)
        ckv = x @ w[p + "self_attn.kv_a_proj_with_mqa.weight"].T
        c_kv, k_pe = torch.split(ckv, [R, dr], dim=-1)
        kv = rms_norm(c_kv, w[p + "self_attn.kv_a_layernorm.weight"], 1e-6) @ w[p + "self_attn.kv_b_proj.weight"].T
        kv = kv.view(B, S, nH, dn + dv).transpose(1, 2)
        k_nope, v = torch.split(kv, [dn, dv], dim=-1)
        k_pe = k_pe.view(B, 1, S, dr)
        q_pe = rotary(q_pe, freqs_cis)
        k_pe = rotary(k_pe, freqs_cis).expand(B, nH, S, dr)
        qs = torch.cat([q_nope, q_pe], dim=-1)
        ks = torch.cat([k_nope, k_pe], dim=-1)
        scaling = (dn + dr) ** -0.5
        scores = (qs @ ks.transpose(2, 3)) * scaling
        causal = torch.triu(torch.ones(S, S, dtype=torch.bool), diagonal=1)
        scores = scores.masked_fill(causal, float("-inf"))
        probs = torch.softmax(scores, dim=-1, dtype=torch.float32)
        out = (probs @ v).transpose(1, 2).reshape(B, S, nH * dv)
        return out @ w[p + "self_attn.o_proj.weight"].T

    def mlp(self, p, x):
        w = self.w
        return (F.silu(x @ w[p + "gate_proj.weight"].T) * (x @ w[p + "up_proj.weight"].T)) @ w[p + "down_proj.weight"].T

    def moe(self, layer, p, x):
        c, w = self.c, self.w
        B, S, H = x.shape
        E = c["n_routed_experts"]
        k = c.get("num_experts_per_tok", 1)
        flat = x.reshape(-1, H)
        logits = flat.float() @ w[p + "mlp.gate.weight"].float().T
        probs = torch.softmax(logits, dim=-1, dtype=torch.float32)
        local = self.allowed[layer]
        mask = torch.zeros(E, dtype=torch.bool)
        mask[local] = True
        masked = torch.where(mask.unsqueeze(0), probs, torch.full_like(probs, -1e4))
        top_w, top_i = torch.topk(masked, k, dim=-1)
        top_w = top_w * c.get("routed_scaling_factor", 1.0)
        out = torch.zeros_like(flat)
        # The reference modeling code's per-expert loop.
        for e in local:
            tok, slot = torch.where(top_i == e)
            if tok.numel() == 0:
                continue
            gu = flat[tok] @ w[f"{p}mlp.experts.{e}.gate_up_proj"].T
            g, u = gu.chunk(2, dim=-1)
            y = (F.silu(g) * u) @ w[f"{p}mlp.experts.{e}.down_proj"].T
            out = out.index_add(0, tok, y * top_w[tok, slot, None])
        out = out.view(B, S, H)
        if c.get("n_shared_experts"):
            out = out + self.mlp(p + "mlp.shared_experts.", x)
        return out

    def layer(self, layer, x, freqs_cis):
        w = self.w
        eps = self.c.get("rms_norm_eps", 1e-6)
        p = f"model.layers.{layer}."
        x = x + self.attention(p, rms_norm(x, w[p + "input_layernorm.weight"], eps), freqs_cis)
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        return x + (self.moe(layer, p, h) if self.is_moe(layer) else self.mlp(p + "mlp.", h))

    def loss(self, tokens, labels, checkpoint=False):
        """Mean next-token CE. checkpoint=True recomputes each decoder layer in backward and makes the
        embedding output require grad, as the reference miner runs (gradient checkpointing plus
        enable_input_require_grads)."""
        c, w = self.c, self.w
        B, S = tokens.shape
        x = w["model.embed_tokens.weight"][tokens]
        inv_freq, attention_factor = yarn_inv_freq(c)
        freqs = torch.arange(S, dtype=torch.float32)[:, None] * inv_freq[None, :]
        freqs_cis = torch.polar(torch.ones_like(freqs), freqs) * attention_factor
        if checkpoint:
            x = x.detach().requires_grad_(True)
        for layer in range(c["num_hidden_layers"]):
            if checkpoint:
                x = torch.utils.checkpoint.checkpoint(self.layer, layer, x, freqs_cis, use_reentrant=True)
            else:
                x = self.layer(layer, x, freqs_cis)
        x = rms_norm(x, w["model.norm.weight"], c.get("rms_norm_eps", 1e-6))
        logits = (x @ w["lm_head.weight"].T).float()
        shift_logits = logits[:, :-1, :].reshape(-1, c["vocab_size"])
        shift_labels = labels[:, 1:].reshape(-1)
        n = int((shift_labels != -100).sum())
        return F.cross_entropy(shift_logits, shift_labels, ignore_index=-100), n


def lr_lambda(step, warmup, total):
    """get_cosine_schedule_with_warmup(num_cycles=0.5), PROTOCOL §10.1."""
    if step < warmup:
        return float(step) / float(max(1, warmup))
    progress = float(step - warmup) / float(max(1, total - warmup))
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * 0.5 * 2.0 * progress)))


def load_case(case_dir):
    """case.json + raw float32 weight files -> (case, Reference, trainable names). Experts require grad."""
    with open(os.path.join(case_dir, "case.json")) as f:
        case = json.load(f)
    weights, trainable = {}, []
    for t in case["tensors"]:
        arr = np.fromfile(os.path.join(case_dir, t["file"]), dtype="<f4").reshape(t["shape"])
        ten = torch.from_numpy(arr.copy())
        if ".mlp.experts." in t["name"]:
            ten.requires_grad_(True)
            trainable.append(t["name"])
        weights[t["name"]] = ten
    return case, Reference(case["config"], case["allowedExperts"], weights), trainable


def main(case_dir):
    torch.manual_seed(0)
    torch.set_num_threads(1)
    case, ref, trainable = load_case(case_dir)
    weights = ref.w

    def batch_tensors(b):
        shape = (b["batch"], b["seq"])
        return (torch.tensor(b["tokens"], dtype=torch.int64).view(shape),
                torch.tensor(b["labels"], dtype=torch.int64).view(shape))

    result = {}
    tokens, labels = batch_tensors(case["batches"][0])
    loss, n = ref.loss(tokens, labels)
    loss.backward()
    result["loss"] = loss.item()
    result["tokens"] = n
    os.makedirs(os.path.join(case_dir, "grad"), exist_ok=True)
    for name in trainable:
        weights[name].grad.detach().numpy().astype("<f4").tofile(os.path.join(case_dir, "grad", name + ".bin"))
        weights[name].grad = None

    # Optimizer replay: GA micro-batches per step, (loss / GA).backward(), clip, AdamW, LambdaLR.
    o, s = case["optimizer"], case["schedule"]
    params = [weights[n] for n in trainable]
    opt = torch.optim.AdamW(params, lr=o["lr"], betas=tuple(o["betas"]), eps=o["eps"], weight_decay=o["weightDecay"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: lr_lambda(k, s["warmupSteps"], s["totalSteps"]))
    steps = []
    for micro in case.get("replay", []):
        opt.zero_grad()
        losses = []
        for bi in micro:
            tk, lb = batch_tensors(case["batches"][bi])
            l, _ = ref.loss(tk, lb)
            losses.append(l.item())
            (l / len(micro)).backward()
        norm = torch.nn.utils.clip_grad_norm_(params, max_norm=o["maxGradNorm"])
        lr = sched.get_last_lr()[0]
        opt.step()
        sched.step()
        steps.append({"lr": lr, "grad_norm": float(norm), "losses": losses})
    result["steps"] = steps
    os.makedirs(os.path.join(case_dir, "final"), exist_ok=True)
    for name in trainable:
        weights[name].detach().numpy().astype("<f4").tofile(os.path.join(case_dir, "final", name + ".bin"))
    with open(os.path.join(case_dir, "result.json"), "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.stderr.write(__doc__)
        sys.exit(2)
    main(sys.argv[1])
