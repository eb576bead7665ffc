#!/usr/bin/python3
"""The accuracy ceiling of the fast recipe's method on a CIFAR-10 copy, in PyTorch.

An independent PyTorch implementation of the published airbench94 method
(Keller Jordan, "94% on CIFAR-10 in 3.29 seconds on a single GPU",
arXiv:2404.00498), written from the paper's description and hyperparameters:
the 64/256/256 network with a frozen 2×2 patch-whitening stem, dirac
initialisation, batchnorm with frozen scales, Nesterov SGD in airbench's
decoupled form (lr 11.5 and weight decay 0.0153 per 1024 examples, shifts
at 64× the rate), label smoothing 0.2, the triangular schedule (0.2 → 1 at
23 % → 0.07), lookahead from epoch 3 every 5 steps, alternating flips,
±2-pixel reflect translation, 9.9 epochs at batch 1024, and the six-view
flip/translate TTA. Published: 94.01 % mean on the official CIFAR-10.

It answers one question our Go trainer cannot answer alone: what this
method reaches on the data in CIFAR10_DIR (here a JPEG-derived copy). Its
accuracy is to be compared with `bin/trainer train --recipe fast` on the
same files. Float32 on the CPU; the batchnorm epsilon is 1e-5 instead of
airbench's 1e-12 because oneDNN's CPU variance can come out slightly
negative, which turns 1e-12 into NaN (seen here).

  /usr/bin/python3 bench/airbench_reference.py --data ../shared/cifar10/cifar-10-batches-bin

Prints one line per epoch and a final JSON line.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)
RECORD = 1 + 3 * 32 * 32


def load(folder, names):
    """Images (N×3×32×32 float in [0, 1]) and labels from CIFAR-10 binary files."""
    raw = []
    for n in names:
        path = os.path.join(folder, n)
        data = np.fromfile(path, dtype=np.uint8)
        if data.size % RECORD:
            sys.exit(f"{path}: {data.size} bytes is not a whole number of {RECORD}-byte records")
        raw.append(data.reshape(-1, RECORD))
    raw = np.concatenate(raw)
    labels = torch.from_numpy(raw[:, 0].astype(np.int64))
    images = torch.from_numpy(raw[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32) / 255)
    return images, labels


def normalise(x):
    m = torch.tensor(MEAN).view(1, 3, 1, 1)
    s = torch.tensor(STD).view(1, 3, 1, 1)
    return (x - m) / s


def conv_block(c_in, c_out, bn_momentum, eps):
    conv1 = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
    conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
    for conv in (conv1, conv2):
        w = conv.weight.data
        nn.init.dirac_(w[: w.size(1)])  # identity on the first input channels
    bn1 = nn.BatchNorm2d(c_out, eps=eps, momentum=bn_momentum)
    bn2 = nn.BatchNorm2d(c_out, eps=eps, momentum=bn_momentum)
    for bn in (bn1, bn2):
        bn.weight.requires_grad = False
    return nn.Sequential(conv1, nn.MaxPool2d(2), bn1, nn.GELU(), conv2, bn2, nn.GELU())


class Net(nn.Module):
    def __init__(self, widths=(64, 256, 256), bn_momentum=0.4, eps=1e-5, head_scale=1 / 9):
        super().__init__()
        self.whiten = nn.Conv2d(3, 24, 2, bias=True)
        self.whiten.weight.requires_grad = False
        self.whiten.bias.data.zero_()
        self.body = nn.Sequential(
            nn.GELU(),
            conv_block(24, widths[0], bn_momentum, eps),
            conv_block(widths[0], widths[1], bn_momentum, eps),
            conv_block(widths[1], widths[2], bn_momentum, eps),
            nn.MaxPool2d(3),
        )
        self.head = nn.Linear(widths[2], 10, bias=False)
        self.head_scale = head_scale

    def forward(self, x):
        return self.head(self.body(self.whiten(x)).flatten(1)) * self.head_scale

    def init_whitening(self, images, eps=5e-4):
        """Eigenvectors of the 2×2 patch covariance, scaled to unit variance, and their negatives."""
        patches = images.unfold(2, 2, 1).unfold(3, 2, 1)  # N×C×31×31×2×2
        patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, 12).double()
        cov = patches.T @ patches / len(patches)
        vals, vecs = torch.linalg.eigh(cov)
        w = (vecs.T / torch.sqrt(vals + eps).view(-1, 1)).reshape(12, 3, 2, 2).float()
        self.whiten.weight.data[:] = torch.cat((w, -w))


def translate_batch(padded, r):
    """Random crops of ±r pixels out of reflect-padded images."""
    n, size = len(padded), padded.shape[-1] - 2 * r
    out = torch.empty(n, 3, size, size)
    shifts = torch.randint(0, 2 * r + 1, (n, 2))
    for dy in range(2 * r + 1):
        for dx in range(2 * r + 1):
            m = (shifts[:, 0] == dy) & (shifts[:, 1] == dx)
            out[m] = padded[m, :, dy : dy + size, dx : dx + size]
    return out


@torch.no_grad()
def predict(model, images, tta, batch=1000):
    model.eval()
    out = []
    for x in images.split(batch):
        def both(v):
            return 0.5 * model(v) + 0.5 * model(v.flip(-1))
        if not tta:
            out.append(model(x))
            continue
        logits = both(x)
        p = F.pad(x, (1,) * 4, mode="reflect")
        shifted = 0.5 * both(p[:, :, 0:32, 0:32]) + 0.5 * both(p[:, :, 2:34, 2:34])
        out.append(0.5 * logits + 0.5 * shifted)
    return torch.cat(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=os.environ.get("CIFAR10_DIR", "../shared/cifar10/cifar-10-batches-bin"))
    ap.add_argument("--epochs", type=float, default=9.9)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bn-eps", type=float, default=1e-5)
    ap.add_argument("--limit", type=int, default=0, help="first N training and test images only (a smoke test)")
    args = ap.parse_args()
    if args.epochs <= 0 or args.batch <= 0 or args.threads <= 0 or args.limit < 0:
        sys.exit("epochs, batch and threads must be positive and limit not negative")

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    start = time.perf_counter()
    train_x, train_y = load(args.data, [f"data_batch_{i}.bin" for i in range(1, 6)])
    test_x, test_y = load(args.data, ["test_batch.bin"])
    if args.limit > 0:
        train_x, train_y, test_x, test_y = train_x[:args.limit], train_y[:args.limit], test_x[:args.limit], test_y[:args.limit]
    train_x, test_x = normalise(train_x), normalise(test_x)

    model = Net(eps=args.bn_eps).to(memory_format=torch.channels_last)
    model.init_whitening(train_x[:5000])

    # airbench's decoupled hyperparameters, as PyTorch SGD on a summed loss.
    momentum = 0.85
    kilostep = 1024 * (1 + 1 / (1 - momentum))
    lr = 11.5 / kilostep
    wd = 0.0153 * args.batch / kilostep
    lr_bias = lr * 64
    bn_biases = [m.bias for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    others = [p for p in model.parameters() if p.requires_grad and all(p is not q for q in bn_biases)]
    opt = torch.optim.SGD(
        [dict(params=bn_biases, lr=lr_bias, weight_decay=wd / lr_bias), dict(params=others, lr=lr, weight_decay=wd / lr)],
        momentum=momentum, nesterov=True)
    for g in opt.param_groups:
        g["base_lr"] = g["lr"]

    steps_per_epoch = len(train_x) // args.batch
    total = math.ceil(steps_per_epoch * args.epochs)
    peak = int(0.23 * total)

    def factor(step):
        if step < peak:
            return 0.2 + 0.8 * step / peak
        return 1 - 0.93 * (step - peak) / (total - peak)

    # Alternating flips: a random half flipped once, then all flipped every other epoch.
    flip = torch.rand(len(train_x)) < 0.5
    base = torch.where(flip.view(-1, 1, 1, 1), train_x.flip(-1), train_x)
    padded = F.pad(base, (2,) * 4, mode="reflect")
    slow = None
    step = 0
    for epoch in range(math.ceil(args.epochs)):
        model.whiten.bias.requires_grad = epoch < 3
        model.train()
        images = translate_batch(padded, 2)
        if epoch % 2 == 1:
            images = images.flip(-1)
        order = torch.randperm(len(images))
        t0, first = time.perf_counter(), step
        for i in range(steps_per_epoch):
            idx = order[i * args.batch : (i + 1) * args.batch]
            x = images[idx].contiguous(memory_format=torch.channels_last)
            loss = F.cross_entropy(model(x), train_y[idx], label_smoothing=0.2, reduction="sum")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            for g in opt.param_groups:
                g["lr"] = g["base_lr"] * factor(step)
            opt.step()
            step += 1
            if epoch >= 3 and step % 5 == 0:
                if slow is None:
                    slow = {k: v.clone() for k, v in model.state_dict().items()}
                else:
                    decay = 0.95**5 * (step / total) ** 3
                    for k, v in model.state_dict().items():
                        if v.is_floating_point():
                            slow[k].lerp_(v, 1 - decay)
                            v.copy_(slow[k])
            if step >= total:
                break
        if slow is not None:
            for k, v in model.state_dict().items():
                if v.is_floating_point():
                    v.copy_(slow[k])
        secs = time.perf_counter() - t0
        acc = (predict(model, test_x, False).argmax(1) == test_y).float().mean().item()
        print(f"epoch {epoch + 1}: loss {loss.item() / args.batch:.4f}, test {acc * 100:.2f} %, "
              f"{(step - first) * args.batch / secs:.0f} img/s", flush=True)
    tta = (predict(model, test_x, True).argmax(1) == test_y).float().mean().item()
    print(json.dumps({"method": "airbench94 (PyTorch reference)", "torch": torch.__version__, "epochs": args.epochs,
                      "steps": total, "test_accuracy": round(acc, 4), "test_accuracy_tta": round(tta, 4),
                      "seconds": round(time.perf_counter() - start, 1)}))


if __name__ == "__main__":
    main()
