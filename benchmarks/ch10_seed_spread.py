"""How much do chapter 10's comparisons on noise and on the test set move with the seed and the CPU?

    python benchmarks/ch10_seed_spread.py --seeds 0 1 2 3 4 --out benchmarks/results/ch10-seed-spread-native.json
    env $(python tools/cpu_personality.py) python benchmarks/ch10_seed_spread.py ... --out ...-cpu2.json

Chapter 10 trains each predictor once (a sparse-VD LeNet-300-100 for 4 epochs, weight-decay nets,
MC dropout) and compares them on 1000 noise images and on the test set. A claim such as "the single
dense network is the most confident on noise" is a result only if it holds for other seeds and on
other CPUs (the chapter's stored run and a run on an Intel Xeon disagreed). This script repeats the
chapter's training for each seed with the chapter's settings (the trainer's schedule, ``lambda =
30``, dropout ``p = 0.1`` and ``T = 20``) and writes, per seed and predictor, the scores the chapter
quotes: mean entropy and mean confidence on the noise images, the share of them with confidence
above 0.9, and the test error, NLL and ECE. One torch thread, as in the chapter; the CPU, its
kernels (``torch.backends.cpu.get_cpu_capability()``) and the seconds are recorded with the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from course_lib import dropout, ensemble, ood, prediction, scores
from course_lib.data import mnist_tensors
from course_lib.models import LeNet300100
from course_lib.recipes import get_recipe
from course_lib.runtime import cpu_name
from course_lib.train import set_lr, train, train_epoch

WEIGHT_DECAY, P_DROP, N_PASSES, EPOCHS = 30.0, 0.1, 20, 4


def train_map(make_net, seed, x, y, recipe):
    """Chapter 10's baseline loop: the sparse-VD run's schedule on N * CE with Adam's weight decay."""
    torch.manual_seed(seed)
    model = make_net()
    opt = torch.optim.Adam(model.parameters(), lr=recipe.lr, weight_decay=WEIGHT_DECAY)
    gen = torch.Generator().manual_seed(seed)
    for epoch in range(recipe.epochs):
        set_lr(opt, recipe.lr_at(epoch))
        train_epoch(model, opt, x, y, gen, recipe, epoch, sparse=False)
    return model.eval()


def summary(p_noise, p_test, y_test) -> dict:
    """The scores chapter 10 quotes for one predictor."""
    conf = scores.confidence(p_noise)
    s = scores.score(p_test, y_test)
    return {
        "noise_entropy": scores.predictive_entropy(p_noise).mean().item(),
        "noise_confidence": conf.mean().item(),
        "noise_conf90": (conf > 0.9).float().mean().item(),
        "test_error": 1 - s.accuracy,
        "test_nll": s.nll,
        "test_ece": s.ece,
    }


def one_seed(seed: int, data, x_noise) -> dict:
    """Train the chapter's three kinds of network with one seed and score the five predictors."""
    x_train, y_train, x_test, y_test = data
    recipe = get_recipe("quick", "lenet300", epochs=EPOCHS)
    start = time.process_time()
    net, _ = train(
        "lenet300",
        sparse=True,
        recipe="quick",
        epochs=EPOCHS,
        device="cpu",
        seed=seed,
        data=data,
        progress=False,
        log=False,
    )
    dense = train_map(lambda: LeNet300100(sparse=False), seed, x_train, y_train, recipe)
    drop_net = train_map(
        lambda: dropout.DropoutMLP((784, 300, 100, 10), p=P_DROP), seed, x_train, y_train, recipe
    )

    def mc_dropout(x):
        with torch.random.fork_rng():
            torch.manual_seed(seed + 4)
            return dropout.mc_samples(drop_net, x, N_PASSES).mean(0)

    predictors = {
        "dense": lambda x: prediction.predict(dense, x),
        "MC dropout": mc_dropout,
        "mean network": lambda x: prediction.predict(net, x),
        "ensemble K=20": lambda x: ensemble.mc_predict(net, x, 20, seed=seed + 3),
    }
    out = {name: summary(f(x_noise), f(x_test), y_test) for name, f in predictors.items()}
    out["cpu_seconds"] = time.process_time() - start
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = (*mnist_tensors("train"), *mnist_tensors("test"))
    x_noise = ood.noise_images(1000, seed=0)
    record = {
        "cpu": cpu_name(),
        "kernels": str(torch.backends.cpu.get_cpu_capability()),
        "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", ""),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "seeds": {},
    }
    for seed in args.seeds:
        record["seeds"][str(seed)] = one_seed(seed, data, x_noise)
        r = record["seeds"][str(seed)]
        print(
            f"seed {seed} ({r['cpu_seconds']:.0f} s CPU): "
            + "; ".join(
                f"{n} H {v['noise_entropy']:.3f} conf90 {100 * v['noise_conf90']:.1f} % err {100 * v['test_error']:.2f} %"
                for n, v in r.items()
                if isinstance(v, dict)
            ),
            flush=True,
        )
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
