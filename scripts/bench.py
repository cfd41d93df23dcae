"""`make bench`: throughput of robex's hot loops on this machine, and speed-ups as ratios measured
within this one run (machines are noisy: compare ratios, not absolute numbers across runs).

- explanation attack (ATEX tables): image-iterations / s, exact tape pullback vs autograd double
  backprop, at the attack's batch size;
- ATEX fine-tuning: student samples / s (seeds x (1 + n_along x n_perp)) and the teacher SmoothGrad
  precomputation in images / s;
- channels_last vs contiguous layout for training;
- the targeted map attack (AGG-Mean / Dombrowski) on the vgg_small stand-in: image-iterations / s
  at batch sizes 1 (the reference code attacks one image pair per run) and 64, per explainer.
"""
from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: robex is not installed

from robex.attacks.manipulation import ExplanationManipulation
from robex.attacks.objectives import TopKSuppression
from robex.data.mnist_like import load_fashion_mnist
from robex.defenses.atex import ATEX
from robex.explainers.base import Explainer
from robex.explainers.gradient import Gradient
from robex.models.atex_cnn import atex_cnn
from robex.pipeline import freeze, prepare_model
from robex.threats import Threat


class AutogradGradient(Gradient):
    """The same explainer forced onto the generic double-backprop route (for the ratio)."""

    heatmap_with_pullback = Explainer.heatmap_with_pullback


def best_time(fn, repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def rate(value: float) -> str:
    """A throughput with at least 3 significant digits, so the printed ratios can be checked."""
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seeds", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--map-iterations", type=int, default=4)
    ap.add_argument("--skip", nargs="*", default=[], choices=["attack", "atex", "map"])
    args = ap.parse_args()
    device = torch.device("cpu")
    data = load_fashion_mnist()
    torch.manual_seed(0)
    model = freeze(prepare_model(atex_cnn(), device))
    x, y = data.test_x[: args.images], data.test_y[: args.images]
    print(f"machine: {torch.get_num_threads()} torch threads, torch {torch.__version__}")

    if "attack" not in args.skip:
        bench_attack(args, model, x, y)
    if "atex" not in args.skip:
        bench_atex(args, model, data)
    if "map" not in args.skip:
        bench_map_attack(args, data)


def bench_attack(args, model, x, y) -> None:
    def attack_rate(explainer, batch):
        att = ExplanationManipulation(threat=Threat(budget=0.08), objective=TopKSuppression(k=50), steps=args.steps, batch_size=batch, show_progress=False)
        t = best_time(lambda: att(model, explainer, x, y), args.repeats)
        return args.images * args.steps / t

    fast = attack_rate(Gradient(), args.batch)
    slow = attack_rate(AutogradGradient("gradient"), args.batch)
    big = attack_rate(Gradient(), 1000)
    print(f"explanation attack, batch {args.batch}: {rate(fast)} image-iterations/s (exact tape pullback); "
          f"{rate(slow)} with autograd double backprop -> {fast / slow:.2f}x; "
          f"batch 1000: {rate(big)} (batch {args.batch} is {fast / big:.2f}x as fast)")



def bench_atex(args, model, data) -> None:
    atex = ATEX(delta=0.08, n_along=2, n_perp=8, show_progress=False)
    sub = copy.copy(data)
    sub.train_x, sub.train_y = data.train_x[: args.seeds], data.train_y[: args.seeds]
    teacher = model
    t = best_time(lambda: (atex._directions.clear(), atex.teacher_directions(teacher, sub.train_x, sub.train_y)),
                  args.repeats)
    print(f"ATEX teacher SmoothGrad ({atex.sg.n_samples} copies): {rate(args.seeds / t)} images/s")

    def atex_rate(layout):
        student = copy.deepcopy(model).to(memory_format=layout)
        for p in student.parameters():
            p.requires_grad_(True)
        t = best_time(lambda: atex.apply_stage(1, teacher, student, sub), args.repeats)
        return args.seeds * (1 + atex.n_along * atex.n_perp) / t

    cl, contiguous = atex_rate(torch.channels_last), atex_rate(torch.contiguous_format)
    print(f"ATEX fine-tuning, {atex.batch_size} seeds x {1 + atex.n_along * atex.n_perp} samples per step "
          f"(micro-batch {atex.micro_batch}): {rate(cl)} student samples/s with channels_last; "
          f"{rate(contiguous)} contiguous -> {cl / contiguous:.2f}x")


def bench_map_attack(args, data) -> None:
    from robex.attacks.targeted_map import TargetedMapAttack
    from robex.explainers.aggregate import AggMean
    from robex.explainers.guided_backprop import GuidedBackprop
    from robex.explainers.integrated_gradients import IntegratedGradients
    from robex.explainers.lrp import LRP
    from robex.models.vgg import vgg_small

    torch.manual_seed(0)
    model = freeze(prepare_model(vgg_small(), torch.device("cpu")))
    x, x_t = data.test_x[:64], data.test_x[64:128]
    with torch.no_grad():
        cls, cls_t = model(x).argmax(1), model(x_t).argmax(1)
    explainers = [Gradient(), GuidedBackprop(), LRP(), IntegratedGradients(steps=30),
                  AggMean(members=[LRP(), GuidedBackprop(), Gradient()])]
    for ex in explainers:
        h_t = ex(model, x_t, cls_t)
        rates = {}
        for batch in (1, 64):
            n = batch if batch > 1 else 4  # batch 1: four pairs one after the other
            its = args.map_iterations if ex.name != "integrated_gradients" else 1
            att = TargetedMapAttack(iterations=its, batch_size=batch, show_progress=False)
            t = best_time(lambda: att(model, ex, x[:n], cls[:n], h_target=h_t[:n]), 1)
            rates[batch] = n * its / t
        print(f"map attack on vgg_small, {ex.name}: {rate(rates[1])} image-iterations/s at batch 1, "
              f"{rate(rates[64])} at batch 64 -> {rates[64] / rates[1]:.1f}x")


if __name__ == "__main__":
    main()
