"""Training-step time of sparse-VD LeNet-5 against dense LeNet-5, measured in one run.

    python benchmarks/step_time.py                 # batch 100, auto device, 40 rounds
    python benchmarks/step_time.py --threads 1 --rounds 60 --json out.json

Every round times one step of each variant back to back (interleaved), so a machine shared
with other jobs slows all variants alike; the table reports the median step time, images/s
and the ratio to the dense net of the same round set.  A step is exactly the trainer's
(:func:`course_lib.objective.training_step`: forward, N * CE + KL, backward, Adam).

Variants:

* ``dense``         -- ``LeNet5(sparse=False)``: nn.Conv2d / nn.Linear.
* ``sparse VD``     -- ``LeNet5()``: the course's layers (two convolutions, fused noise).
* ``naive``         -- reference: the same layers with autograd-composed noise
                       ``mean + sqrt(var + eps) * randn`` (what a first implementation does).
* ``grouped conv``  -- reference: mean and variance from one grouped convolution over
                       ``[x, x^2]`` with weight ``[theta, sigma^2]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from course_lib import layers
from course_lib.models import LeNet5
from course_lib.runtime import cpu_name, pick_device
from course_lib.objective import training_step


class NaiveConv(layers.Conv2dSVDO):
    """Two convolutions and noise composed from autograd ops."""

    def forward(self, x):  # noqa: D102
        if not self.training:
            return super().forward(x)
        mean = F.conv2d(x, self.theta, self.bias, self.stride, self.padding)
        var = F.conv2d(x * x, self.log_sigma2.exp(), None, self.stride, self.padding)
        return mean + torch.sqrt(var + layers.VAR_EPS) * torch.randn_like(mean)


class NaiveLinear(layers.LinearSVDO):
    """Two matrix products and noise composed from autograd ops."""

    def forward(self, x):  # noqa: D102
        if not self.training:
            return super().forward(x)
        mean = F.linear(x, self.theta, self.bias)
        var = F.linear(x * x, self.log_sigma2.exp())
        return mean + torch.sqrt(var + layers.VAR_EPS) * torch.randn_like(mean)


class GroupedConv(layers.Conv2dSVDO):
    """Mean and variance from one grouped convolution, then the fused noise."""

    def forward(self, x):  # noqa: D102
        if not self.training:
            return super().forward(x)
        o = self.out_channels
        bias = None if self.bias is None else torch.cat([self.bias, self.bias.new_zeros(o)])
        both = F.conv2d(
            torch.cat([x, x * x], 1),
            torch.cat([self.theta, self.log_sigma2.exp()], 0),
            bias,
            self.stride,
            self.padding,
            groups=2,
        )
        mean, var = both.split(o, 1)
        return layers.LRTNoise.apply(mean, var)


def _swap(model, conv_cls, linear_cls):
    """Re-class the sparse layers of ``model`` (same parameters, other forward)."""
    for m in model.modules():
        if isinstance(m, layers.Conv2dSVDO) and conv_cls is not None:
            m.__class__ = conv_cls
        elif isinstance(m, layers.LinearSVDO) and linear_cls is not None:
            m.__class__ = linear_cls
    return model


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--rounds", type=int, default=40)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    p.add_argument("--json", default=None, help="also write the results here")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = pick_device(args.device)
    torch.manual_seed(0)
    x = torch.randn(args.batch, 1, 28, 28, device=dev)
    y = torch.randint(0, 10, (args.batch,), device=dev)
    variants = {
        "dense": LeNet5(sparse=False),
        "sparse VD": LeNet5(),
        "naive": _swap(LeNet5(), NaiveConv, NaiveLinear),
        "grouped conv": _swap(LeNet5(), GroupedConv, None),
    }
    steps = {}
    for name, net in variants.items():
        net.to(dev).train()
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        steps[name] = lambda net=net, opt=opt: training_step(net, opt, x, y, 60_000, 1.0)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    for step in steps.values():
        for _ in range(args.warmup):
            step()
    times = {k: [] for k in steps}
    for _ in range(args.rounds):
        for name, step in steps.items():
            sync()
            t0 = time.perf_counter()
            step()
            sync()
            times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": (
            torch.cuda.get_device_name(dev)
            if dev.type == "cuda"
            else f"{cpu_name()} ({os.cpu_count()} cores), {torch.get_num_threads()} torch thread(s)"
        ),
        "device": str(dev),
        "torch": torch.__version__,
        "batch": args.batch,
        "rounds": args.rounds,
        "variants": {
            k: {"ms_per_step": 1e3 * v, "images_per_s": args.batch / v, "ratio_to_dense": v / med["dense"]}
            for k, v in med.items()
        },
    }
    print(
        f"LeNet-5 training step, batch {args.batch}, {dev}, torch {torch.__version__}, "
        f"{result['machine']}, median of {args.rounds} interleaved rounds"
    )
    print(f"{'variant':<14}{'ms/step':>9}{'images/s':>10}{'ratio':>7}")
    for k, v in result["variants"].items():
        print(f"{k:<14}{v['ms_per_step']:>9.1f}{v['images_per_s']:>10.0f}{v['ratio_to_dense']:>7.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
