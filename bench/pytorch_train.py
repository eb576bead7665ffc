#!/usr/bin/python3
"""PyTorch half of bench/train_vs_pytorch.sh and bench/gpu.sh: training-step throughput.

Builds the network of a spec JSON (models/testdata/reference/<preset>.spec.json)
as an nn.Module with the layer semantics of reference.py, then times full
training steps (forward in train mode with batch statistics and active
dropout, cross-entropy, backward, Adam update) on one batch of random
N(0, 1) NCHW float32 images, the same kind of input the Go benchmarks
BenchmarkTrainThroughput (CPU) and BenchmarkStep (GPU, package
trainer/internal/cuda/driver) use. Prints one JSON line with images/s.

  /usr/bin/python3 bench/pytorch_train.py --spec models/testdata/reference/keras-cnn.spec.json --batch 128
  python3 bench/pytorch_train.py --device cuda --spec ... --batch 512

On --device cuda the math is pedantic float32 like ours: TF32 is off for
matmuls and cuDNN convolutions (--tf32 turns it on), cuDNN's autotuner is
off (--cudnn-benchmark turns it on), and the timing synchronises the GPU
before starting and stopping the clock.
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

DEFAULT_EPS = 1e-5  # models.DefaultBatchNormEps
BN_MOMENTUM = 0.1  # nn.DefaultBatchNormMomentum, PyTorch's convention


def key(name):
    """A ModuleDict key for a layer name (keys may not contain dots)."""
    return name.replace(".", "_")


class SpecNet(nn.Module):
    """The network a models.Spec describes, layer for layer."""

    def __init__(self, spec):
        super().__init__()
        self.layers = spec["layers"]
        self.mods = nn.ModuleDict()
        inp = spec["input"]
        c, h, w = inp["c"], inp["h"], inp["w"]
        shapes = {"input": (c, h, w)}
        for layer in self.layers:
            kind, name = layer["type"], layer["name"]
            k = key(name)
            if kind == "conv2d":
                kernel, pad = layer["kernel"], layer.get("padding", 0)
                stride = layer.get("stride", 0) or 1
                self.mods[k] = nn.Conv2d(c, layer["filters"], kernel, stride=stride, padding=pad,
                                         bias=layer.get("bias", False))
                c = layer["filters"]
                h, w = (h + 2 * pad - kernel) // stride + 1, (w + 2 * pad - kernel) // stride + 1
            elif kind == "batchnorm":
                # Vector batches are N×C×1×1 here, as in reference.py, so
                # BatchNorm2d covers the batchnorm after a linear layer too.
                self.mods[k] = nn.BatchNorm2d(c, eps=layer.get("eps", 0) or DEFAULT_EPS, momentum=BN_MOMENTUM)
            elif kind == "relu":
                self.mods[k] = nn.ReLU()
            elif kind == "leaky_relu":
                self.mods[k] = nn.LeakyReLU(layer.get("alpha", 0))
            elif kind == "gelu":
                self.mods[k] = nn.GELU()  # exact, like the Go op
            elif kind == "maxpool":
                kernel = layer["kernel"]
                stride = layer.get("stride", 0) or kernel
                self.mods[k] = nn.MaxPool2d(kernel, stride=stride)
                h, w = (h - kernel) // stride + 1, (w - kernel) // stride + 1
            elif kind == "global_avg_pool":
                self.mods[k] = nn.AdaptiveAvgPool2d(1)
                h = w = 1
            elif kind == "add":
                if layer.get("project"):
                    sc, sh, _ = shapes[layer["from"]]
                    # The smallest stride mapping the skip's size onto the main path's.
                    stride = next(s for s in range(1, 17) if (sh - 1) // s + 1 == h)
                    self.mods[k + "_proj"] = nn.Conv2d(sc, c, 1, stride=stride, bias=False)
                    self.mods[k + "_proj_bn"] = nn.BatchNorm2d(c, eps=DEFAULT_EPS, momentum=BN_MOMENTUM)
            elif kind == "dropout":
                self.mods[k] = nn.Dropout(layer.get("rate", 0))
            elif kind == "flatten":
                c, h, w = c * h * w, 1, 1
            elif kind == "linear":
                self.mods[k] = nn.Linear(c * h * w, layer["units"], bias=layer.get("bias", False))
                c, h, w = layer["units"], 1, 1
            elif kind == "softmax":
                pass  # the loss applies it
            else:
                raise ValueError(f"layer {name!r}: unknown type {kind!r}")
            shapes[name] = (c, h, w)

    def forward(self, x):
        outputs = {"input": x}
        for layer in self.layers:
            kind, name = layer["type"], layer["name"]
            k = key(name)
            if kind == "add":
                skip = outputs[layer["from"]]
                if layer.get("project"):
                    skip = self.mods[k + "_proj_bn"](self.mods[k + "_proj"](skip))
                x = x + skip
            elif kind == "flatten":
                x = torch.flatten(x, 1).reshape(x.shape[0], -1, 1, 1)
            elif kind == "linear":
                x = self.mods[k](x.reshape(x.shape[0], -1)).reshape(x.shape[0], -1, 1, 1)
            elif kind == "softmax":
                break
            else:
                x = self.mods[k](x)
            outputs[name] = x
        return x.reshape(x.shape[0], -1)


def check_sizes(model, params):
    """Checks the module against the spec's parameter list, when the JSON
    has one: the same number of values, running statistics included, means
    the same layers with the same shapes, short of a transposition."""
    if not params:
        return
    want = sum(torch.Size(p["shape"]).numel() for p in params)
    have = sum(p.numel() for p in model.parameters())
    have += sum(b.numel() for n, b in model.named_buffers() if not n.endswith("num_batches_tracked"))
    if have != want:
        sys.exit(f"PyTorch model has {have} values, the spec's params {want}: architectures differ")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spec", required=True, help="spec JSON: a models.Spec, or {\"spec\": models.Spec, ...}")
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--steps", type=int, default=10, help="timed steps")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    ap.add_argument("--rounds", type=int, default=1, help="timed rounds of --steps steps; images_per_s is their median")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--memory-format", choices=("channels_last", "contiguous"), default="channels_last")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    ap.add_argument("--tf32", action="store_true", help="cuda: allow TF32 in matmuls and convolutions")
    ap.add_argument("--cudnn-benchmark", action="store_true", help="cuda: let cuDNN autotune its algorithms")
    args = ap.parse_args()
    if args.batch <= 0 or args.steps <= 0 or args.rounds <= 0 or args.warmup < 0 or args.threads <= 0:
        sys.exit("batch, steps, rounds and threads must be positive and warmup not negative")

    with open(args.spec) as f:
        doc = json.load(f)
    spec = doc.get("spec", doc)

    device = torch.device(args.device)
    cuda = device.type == "cuda"
    if cuda:
        if not torch.cuda.is_available():
            sys.exit(f"--device {args.device}: torch {torch.__version__} sees no CUDA GPU")
        torch.backends.cuda.matmul.allow_tf32 = args.tf32
        torch.backends.cudnn.allow_tf32 = args.tf32
        torch.backends.cudnn.benchmark = args.cudnn_benchmark
    elif args.tf32 or args.cudnn_benchmark:
        sys.exit("--tf32 and --cudnn-benchmark need --device cuda")

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    fmt = torch.channels_last if args.memory_format == "channels_last" else torch.contiguous_format
    model = SpecNet(spec)
    check_sizes(model, doc.get("params"))
    model = model.to(device=device, memory_format=fmt).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    inp = spec["input"]
    x = torch.randn(args.batch, inp["c"], inp["h"], inp["w"]).contiguous(memory_format=fmt).to(device)
    y = torch.randint(0, 10, (args.batch,)).to(device)

    def sync():
        if cuda:
            torch.cuda.synchronize(device)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    for _ in range(args.warmup):
        step()
    sync()
    rounds = []
    for _ in range(args.rounds):
        start = time.perf_counter()
        for _ in range(args.steps):
            loss = step()
        loss.item()  # waits for the GPU; CPU ops are synchronous
        sync()
        rounds.append(time.perf_counter() - start)
    secs = sorted(rounds)[len(rounds) // 2]
    out = {
        "framework": "pytorch", "torch": torch.__version__, "spec": spec["name"], "batch": args.batch,
        "steps": args.steps, "threads": torch.get_num_threads(), "memory_format": args.memory_format,
        "device": str(device), "seconds": round(secs, 4), "images_per_s": round(args.steps * args.batch / secs, 2),
        "rounds_images_per_s": [round(args.steps * args.batch / r, 2) for r in rounds],
    }
    if cuda:
        out.update({"gpu": torch.cuda.get_device_name(device), "cuda": torch.version.cuda,
                    "cudnn": torch.backends.cudnn.version(), "tf32": args.tf32,
                    "cudnn_benchmark": args.cudnn_benchmark})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
