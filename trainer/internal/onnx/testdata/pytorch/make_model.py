"""Writes the PyTorch-produced ONNX fixture for the Go import tests.

A small CifarNet-like network (conv/batchnorm/LeakyReLU residual blocks, one
with a 1x1 projection, max-pooling, a batchnorm that PyTorch cannot fold, an
exact GELU, global average pooling, a linear classifier and softmax) with
seeded random weights and non-trivial batchnorm statistics, exported by
torch.onnx.export at opset 17 with a symbolic batch size. The class names
and normalisation go into metadata_props the way cifarnet's exporter writes
them. Also writes the inputs and PyTorch's probabilities for them.

Run with Debian's python3-torch and python3-onnx:

    cd trainer/internal/onnx/testdata/pytorch && /usr/bin/python3 make_model.py

Outputs: tiny_cifarnet.onnx, inputs.f32 (4x3x32x32 little-endian float32),
expected.json (PyTorch's probabilities, 4x10, and the versions used).
"""

import json

import numpy as np
import onnx
import torch
from torch import nn

torch.manual_seed(20240601)

CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
           "dog", "frog", "horse", "ship", "truck"]
NORMALIZATION = {"mean": [0.4914, 0.4822, 0.4465], "std": [0.247, 0.2435, 0.2616]}


class Block(nn.Module):
    """Two 3x3 convolutions with batchnorm and a residual connection,
    projected by a 1x1 convolution and batchnorm when the width changes."""

    def __init__(self, cin, cout):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.act1 = nn.LeakyReLU(0.1)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.proj = None
        if cin != cout:
            self.proj = nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.act2 = nn.LeakyReLU(0.1)

    def forward(self, x):
        y = self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x)))))
        skip = x if self.proj is None else self.proj(x)
        return self.act2(y + skip)


class TinyCifarNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.stem_act = nn.LeakyReLU(0.1)
        self.block1 = Block(16, 16)
        self.pool1 = nn.MaxPool2d(2)
        self.block2 = Block(16, 32)
        self.pool2 = nn.MaxPool2d(2)
        self.bn = nn.BatchNorm2d(32)  # after a pool: not foldable
        self.gelu = nn.GELU()
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = self.stem_act(self.stem(x))
        x = self.pool1(self.block1(x))
        x = self.pool2(self.block2(x))
        x = self.gelu(self.bn(x))
        x = torch.flatten(self.gap(x), 1)
        return torch.softmax(self.fc(x), dim=1)


def main():
    model = TinyCifarNet()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    model.eval()

    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        probs = model(x)

    torch.onnx.export(model, x, "tiny_cifarnet.onnx", opset_version=17,
                      input_names=["input"], output_names=["probabilities"],
                      dynamic_axes={"input": {0: "batch"}, "probabilities": {0: "batch"}})
    m = onnx.load("tiny_cifarnet.onnx")
    onnx.checker.check_model(m)
    for key, value in (("classes", CLASSES), ("normalization", NORMALIZATION)):
        entry = m.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value)
    onnx.save(m, "tiny_cifarnet.onnx")

    x.numpy().astype("<f4").tofile("inputs.f32")
    with open("expected.json", "w") as f:
        json.dump({
            "torch": torch.__version__,
            "onnx": onnx.__version__,
            "shape": list(probs.shape),
            "probabilities": [float(v) for v in probs.numpy().ravel()],
        }, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
