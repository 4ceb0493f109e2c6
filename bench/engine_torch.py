#!/usr/bin/python3
"""PyTorch side of bench/engine.mjs: the same training step (forward, backward, AdamW on the routed
experts) in the reference miner's style, through test/reference/deepseek_v2_ref.py: per-expert
Python loop, autograd, fp32 on every core; "miner" mode adds what the miner enables — gradient
checkpointing of every decoder layer and input gradients from the embedding on.

Usage: engine_torch.py CASE_DIR MODE REPS   (MODE: miner | lean)
Prints "torch_loss <x>" and "torch_step_s <best of REPS seconds, after one warm-up step>".
"""
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "reference"))
from deepseek_v2_ref import load_case  # noqa: E402


def main(case_dir, mode, reps):
    torch.set_num_threads(os.cpu_count() or 1)
    case, ref, trainable = load_case(case_dir)
    o = case["optimizer"]
    params = [ref.w[n] for n in trainable]
    opt = torch.optim.AdamW(params, lr=o["lr"], betas=tuple(o["betas"]), eps=o["eps"], weight_decay=o["weightDecay"])
    b = case["batches"][0]
    tokens = torch.tensor(b["tokens"], dtype=torch.int64).view(b["batch"], b["seq"])
    labels = torch.tensor(b["labels"], dtype=torch.int64).view(b["batch"], b["seq"])
    times, first = [], None
    for r in range(reps + 1):  # the first run warms up
        t0 = time.perf_counter()
        loss, _ = ref.loss(tokens, labels, checkpoint=(mode == "miner"))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, max_norm=o["maxGradNorm"])
        opt.step()
        opt.zero_grad(set_to_none=True)
        dt = time.perf_counter() - t0
        if first is None:
            first = loss.item()
        else:
            times.append(dt)
    print(f"torch_loss {first:.6f}")
    print(f"torch_step_s {min(times):.4f}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
