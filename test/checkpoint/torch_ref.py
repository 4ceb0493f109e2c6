"""Independent reference for the .pt tests: real PyTorch (Debian python3-torch 1.13).

  torch_ref.py gen DIR     write torch.save files of many kinds into DIR and print a JSON description
  torch_ref.py load FILE…  torch.load(FILE, weights_only=True) each file and print what it holds

Tensors are described by dtype, shape and the SHA-256 of their logical C-order bytes, so the TS side
can compare tensor by tensor without shipping the data back.
"""
import collections
import hashlib
import json
import os
import sys

import torch

DT = {
    torch.float64: "float64", torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16",
    torch.int64: "int64", torch.int32: "int32", torch.int16: "int16", torch.int8: "int8",
    torch.uint8: "uint8", torch.bool: "bool",
}


def describe_tensor(t):
    raw = t.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
    return {"dtype": DT[t.dtype], "shape": list(t.shape), "sha256": hashlib.sha256(raw).hexdigest(), "nbytes": len(raw)}


def model_hash(sd):
    """The reference's get_model_hash (PROTOCOL.md §4.1-4.2), written out here as the independent check."""
    h = hashlib.blake2b(digest_size=24)
    for k in sorted(sd.keys()):
        h.update(k.encode("utf-8"))
        h.update(sd[k].detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def describe(obj):
    if isinstance(obj, dict) and "model_state_dict" in obj:
        layout, sd = "model_state_dict", obj["model_state_dict"]
    else:
        layout, sd = "bare", obj
    return {
        "layout": layout,
        "ordered": isinstance(sd, collections.OrderedDict),
        "keys": list(sd.keys()),
        "tensors": {k: describe_tensor(v) for k, v in sd.items()},
        "model_hash": model_hash(sd),
    }


def gen(out):
    g = torch.Generator().manual_seed(1234)
    rnd = lambda *s: torch.randn(*s, generator=g)
    files = {}

    def save(name, obj, canonical, **kw):
        path = os.path.join(out, name)
        torch.save(obj, path, **kw)
        d = describe(obj)
        d["canonical"] = canonical
        files[name] = d

    # The reference's shape: {"model_state_dict": {key: fp16 contiguous tensor}}.
    save("wrapped_fp16.pt", {"model_state_dict": {
        "model.layers.1.mlp.experts.8.gate_up_proj": rnd(6, 4).half(),
        "model.layers.1.mlp.experts.8.down_proj": rnd(4, 3).half(),
    }}, True)
    save("plain_fp32.pt", {"a.weight": rnd(3, 5), "b.bias": rnd(5)}, True)
    save("ordered_bf16.pt", collections.OrderedDict([("x", rnd(4, 4).bfloat16()), ("y", rnd(2).bfloat16())]), True)
    save("dtypes.pt", {
        "f64": rnd(2, 2).double(), "f32": rnd(3), "f16": rnd(3).half(), "bf16": rnd(3).bfloat16(),
        "i64": torch.tensor([1, -2, 3, 2**40]), "i32": torch.tensor([7, -7], dtype=torch.int32),
        "i16": torch.tensor([300, -300], dtype=torch.int16), "i8": torch.tensor([-5, 5], dtype=torch.int8),
        "u8": torch.tensor([0, 255], dtype=torch.uint8), "bool": torch.tensor([True, False, True]),
        "scalar": torch.tensor(1.5), "empty": torch.zeros(0, 3), "big": torch.arange(70000, dtype=torch.float32),
    }, True)
    base = torch.arange(60, dtype=torch.float32).reshape(5, 12)
    save("views.pt", {"model_state_dict": {
        "full": base,
        "row": base[2],                      # storage offset
        "cols": base[:, 3:7],                # non-contiguous slice
        "t": base.t(),                       # transpose
        "step": base[::2, ::3],              # strided
        "expand": torch.tensor([1.0, 2.0]).unsqueeze(0).expand(3, 2),  # stride 0
        "narrow_half": rnd(8, 8).half()[2:5, 1:7],
    }}, False)
    lin = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3)).half()
    save("module_state_dict.pt", {"model_state_dict": lin.state_dict()}, False)  # OrderedDict + _metadata
    save("parameter.pt", {"p": torch.nn.Parameter(rnd(2, 3)), "q": rnd(2)}, False)
    save("many_300.pt", {"model_state_dict": {f"layer.{i}.w": rnd(2) for i in range(300)}}, True)
    save("many_1001.pt", collections.OrderedDict((f"k{i}", torch.full((1,), float(i))) for i in range(1001)), True)
    save("twelve.pt", {f"t{i}": torch.full((i + 1,), float(i)).half() for i in range(12)}, True)
    save("protocol4.pt", {"model_state_dict": {"a": rnd(3), "b": rnd(2, 2).half()}}, False, pickle_protocol=4)
    print(json.dumps(files))


def load(paths):
    out = {}
    for p in paths:
        try:
            out[os.path.basename(p)] = describe(torch.load(p, weights_only=True))
        except Exception as e:  # reported to the test, which fails on it
            out[os.path.basename(p)] = {"error": f"{type(e).__name__}: {e}"}
    print(json.dumps(out))


if __name__ == "__main__":
    if sys.argv[1] == "gen":
        gen(sys.argv[2])
    elif sys.argv[1] == "load":
        load(sys.argv[2:])
    else:
        sys.exit(f"unknown command {sys.argv[1]}")
