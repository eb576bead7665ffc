#!/usr/bin/python3
"""Independent PyTorch check of the models/ forward pass.

For each preset, reads <preset>.spec.json (written by the Go test
TestReferenceSpecs with -update), fills every tensor from the shared
deterministic generator (the same one as models/reference_test.go), runs the
network with torch.nn.functional in float64, and writes the logits of a few
generated inputs to <preset>.logits.json. The Go test compares its float32
forward pass against these within 1e-4.

Run from the repository root:  /usr/bin/python3 models/testdata/reference/reference.py
"""
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 20261123
INPUTS = 4
MASK = (1 << 64) - 1


class Stream:
    """splitmix64, yielding uniforms in [-1, 1) with 24-bit resolution."""

    def __init__(self, seed):
        self.state = seed & MASK

    def uniform(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        z ^= z >> 31
        return (z >> 40) / float(1 << 23) - 1.0


def f32(x):
    return torch.tensor(x, dtype=torch.float32).item()


def param_value(name, shape, u):
    """Maps a uniform in [-1, 1) to a value for the named tensor."""
    if name.endswith(".running_var"):
        return f32(1.0 + 0.5 * u)
    if name.endswith(".running_mean") or name.endswith(".bias"):
        return f32(0.2 * u)
    if len(shape) == 1:  # batchnorm weight (gamma)
        return f32(1.0 + 0.5 * u)
    fan_in = 1
    for d in shape[1:]:
        fan_in *= d
    return f32(u * math.sqrt(6.0 / fan_in))


def make_tensors(params, stream):
    tensors = {}
    for p in params:
        n = 1
        for d in p["shape"]:
            n *= d
        vals = [param_value(p["name"], p["shape"], stream.uniform()) for _ in range(n)]
        tensors[p["name"]] = torch.tensor(vals, dtype=torch.float64).reshape(p["shape"])
    return tensors


def batchnorm(x, t, prefix, eps):
    return F.batch_norm(x, t[prefix + ".running_mean"], t[prefix + ".running_var"],
                        t[prefix + ".weight"], t[prefix + ".bias"], training=False, eps=eps)


def forward(spec, t, x):
    outputs = {"input": x}
    for layer in spec["layers"]:
        kind, name = layer["type"], layer["name"]
        if kind == "conv2d":
            x = F.conv2d(x, t[name + ".weight"], t.get(name + ".bias"),
                         stride=layer.get("stride", 0) or 1, padding=layer.get("padding", 0))
        elif kind == "batchnorm":
            x = batchnorm(x, t, name, layer.get("eps", 0) or 1e-5)
        elif kind == "relu":
            x = F.relu(x)
        elif kind == "leaky_relu":
            x = F.leaky_relu(x, layer.get("alpha", 0))
        elif kind == "gelu":
            x = F.gelu(x)
        elif kind == "maxpool":
            k = layer["kernel"]
            x = F.max_pool2d(x, k, stride=layer.get("stride", 0) or k)
        elif kind == "global_avg_pool":
            x = F.adaptive_avg_pool2d(x, 1)
        elif kind == "add":
            skip = outputs[layer["from"]]
            if layer.get("project"):
                # The smallest stride mapping the skip's size onto the main path's.
                stride = next(s for s in range(1, 17) if (skip.shape[2] - 1) // s + 1 == x.shape[2])
                skip = F.conv2d(skip, t[name + ".proj.weight"], None, stride=stride)
                skip = batchnorm(skip, t, name + ".proj_bn", 1e-5)
            x = x + skip
        elif kind == "dropout":
            pass  # identity at inference
        elif kind == "flatten":
            x = torch.flatten(x, 1).reshape(x.shape[0], -1, 1, 1)
        elif kind == "linear":
            x = F.linear(x.reshape(x.shape[0], -1), t[name + ".weight"], t.get(name + ".bias"))
            x = x.reshape(x.shape[0], -1, 1, 1)
        elif kind == "softmax":
            break  # the Go test compares logits
        else:
            sys.exit(f"unknown layer type {kind}")
        outputs[name] = x
    return x.reshape(x.shape[0], -1)


def main():
    for preset in ("keras-cnn", "cifarnet", "cifarnet-fast", "edge-cases"):
        with open(os.path.join(HERE, preset + ".spec.json")) as f:
            ref = json.load(f)
        spec = ref["spec"]
        stream = Stream(SEED)
        t = make_tensors(ref["params"], stream)
        shape = (INPUTS, spec["input"]["c"], spec["input"]["h"], spec["input"]["w"])
        n = shape[0] * shape[1] * shape[2] * shape[3]
        x = torch.tensor([f32(2 * stream.uniform()) for _ in range(n)], dtype=torch.float64).reshape(shape)
        with torch.no_grad():
            logits = forward(spec, t, x)
        out = {"preset": preset, "seed": SEED, "inputs": INPUTS, "torch": torch.__version__,
               "logits": logits.tolist()}
        with open(os.path.join(HERE, preset + ".logits.json"), "w") as f:
            json.dump(out, f, indent=1)
            f.write("\n")
        print(preset, "logits[0][:3] =", [round(v, 5) for v in logits[0][:3].tolist()])


if __name__ == "__main__":
    main()
