"""`make bench`: throughput of robex's hot loops on this machine, and speed-ups as ratios measured
within this one run (machines are noisy: compare ratios, not absolute numbers across runs).

- explanation attack (ATEX tables): image-iterations / s, exact tape pullback vs autograd double
  backprop, at the attack's batch size;
- ATEX fine-tuning: student samples / s (seeds x (1 + n_along x n_perp)) and the teacher SmoothGrad
  precomputation in images / s;
- channels_last vs contiguous layout for training;
- the targeted map attack (AGG-Mean / Dombrowski) on the vgg_small stand-in: image-iterations / s
  at batch sizes 1 (the reference code attacks one image pair per run) and 64, per explainer;
- smoothed explanations (on resnet_small, 32x32 colour inputs): SmoothGrad (50 copies, mean |grad|)
  against captum's NoiseTunnel(Saliency) on the same model and batch; cascading randomisation in
  image-layers / s at batch 1 (one image at a time) and batch 64; CURE and PGD-AT training samples / s against standard training;
- the smoothed-explanations attack settings (Delta, Delta+StAdv, Delta+StAdv+Recolor; Dombrowski's
  loss through a softplus(100) surrogate, Gradient maps) on vgg_small with 32x32 colour inputs:
  image-iterations / s at batch 1 and batch 64;
- RelEx (50 noisy copies) on resnet_small: images / s batched over images x copies (one forward pass
  per iteration for the whole batch) against a per-image loop (the authors' code's way);
- side by side with the ATEX authors' procedure (robex/bench/authors_atex.py, robex's plain-torch
  re-implementation of their attack step and fine-tuning step), timed interleaved on the same
  weights and images: the paper's attack (attack=manip_untargeted_paper) on the softplus atex_cnn
  and on the authors' ReLU + tanh network, with the FP32 matmul peak measured in the same run and
  the fraction of it the attack reaches; ATEX fine-tuning per student sample and per seed. Both sides'
  convolution and matmul FLOPs are counted (``flops``), so each line also prints the share of the peak
  the authors' code reaches and a bound: the ratio robex's procedure would reach if all its counted
  arithmetic ran at the matmul peak and nothing else took time. The peak is what a tuned 1024 x 1024
  matmul reaches in the same run (not the CPU's nominal FMA peak), so a goal above that bound cannot
  be met by a faster implementation of the same procedure unless its convolutions outran that
  matmul; only less arithmetic would do it. The
  same count gives the floor of a cold ``make reproduce-atex``: the minutes its atex_authors
  fine-tuning alone needs at the matmul peak.

Each section runs in a fresh process of its own (this script re-invoked with ``--only SECTION``):
the time of an op on the CPU depends on the process's allocator state (glibc maps a large buffer
fresh, page faults included, until its dynamic mmap threshold has grown; a 64 x 1 x 28 x 28
convolution measured 7.7 ms in a fresh process and 0.55 ms after one earlier large op), so without
this the side-by-side ratios changed with the sections run before them (2.1-2.5x in the full run
vs 3.0-4.1x alone, 2026-12-07). The side-by-side section runs twice, in the allocator's default
state and with a warm heap (``WARM_HEAP``: freed memory stays in the process and is reused, as in a
long-running job), and both sets of ratios are printed: a goal is met only if it holds in both.
"""
from __future__ import annotations

import argparse
import copy
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: robex is not installed

from robex.attacks.manipulation import ExplanationManipulation
from robex.attacks.objectives import TopKSuppression
from robex.data.mnist_like import load_fashion_mnist
from robex.defenses.atex import ATEX
from robex.explainers.base import Explainer
from robex.explainers.gradient import Gradient
from robex.explainers.sequential_tape import order_pool_and_activation
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
    ap.add_argument("--large-batch", type=int, default=64,
                    help="the batched side of the map attacks' batch-1 vs batched comparison")
    ap.add_argument("--relex-copies", type=int, default=None,
                    help="RelEx's noisy copies per image (default: the explainer's own, 50)")
    ap.add_argument("--skip", nargs="*", default=[], choices=SECTIONS)
    ap.add_argument("--only", nargs="*", default=None, choices=SECTIONS,
                    help="run only these sections")
    ap.add_argument("--in-process", action="store_true",
                    help="run the sections in this process (default: each in a fresh process of its own)")
    args = ap.parse_args()
    wanted = [s for s in SECTIONS if s not in args.skip and (args.only is None or s in args.only)]
    if not args.in_process:
        run_isolated(wanted)
        return
    device = torch.device("cpu")
    data = load_fashion_mnist()
    torch.manual_seed(0)
    model = freeze(prepare_model(atex_cnn(), device))
    x, y = data.test_x[: args.images], data.test_y[: args.images]
    print(f"machine: {torch.get_num_threads()} torch threads, torch {torch.__version__}")

    run_section = {
        "attack": lambda: bench_attack(args, model, x, y),
        "atex": lambda: bench_atex(args, model, data),
        "map": lambda: bench_map_attack(args, data),
        "smoothed": lambda: bench_smoothed(args),
        "smoothed_attacks": lambda: bench_smoothed_attacks(args),
        "relex": lambda: bench_relex(args),
        "side": lambda: bench_side_by_side(args, model, data),
    }
    for section in wanted:
        run_section[section]()


SECTIONS = ("attack", "atex", "map", "smoothed", "smoothed_attacks", "relex", "side")

# glibc's malloc with the mmap and trim thresholds raised to 256 MB (which also stops their dynamic
# adjustment): every buffer comes from the heap and freed memory stays there for reuse, so no op pays
# for fresh pages after the first round. Other C libraries ignore the variable.
WARM_HEAP = "glibc.malloc.mmap_threshold=268435456:glibc.malloc.trim_threshold=268435456"


def run_isolated(sections) -> None:
    """Run each section in a fresh process: this script with this run's own options, then
    ``--in-process --only SECTION`` (argparse keeps the last ``--only``); the side-by-side section
    twice: allocator default, then ``WARM_HEAP``."""
    for section in sections:
        regimes = [("", None)]
        if section == "side":
            regimes = [(" (allocator default)", None), (f" (warm heap: GLIBC_TUNABLES={WARM_HEAP})", WARM_HEAP)]
        for label, tunables in regimes:
            env = dict(os.environ)
            if tunables:
                env["GLIBC_TUNABLES"] = ":".join(filter(None, [env.get("GLIBC_TUNABLES"), tunables]))
            print(f"== section '{section}' in a fresh process{label}", flush=True)
            done = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--in-process", "--only", section],
                                  env=env)
            if done.returncode:
                sys.exit(f"make bench: section '{section}' failed (exit {done.returncode})")


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
    big = args.large_batch
    x, x_t = data.test_x[:big], data.test_x[big:2 * big]
    with torch.no_grad():
        cls, cls_t = model(x).argmax(1), model(x_t).argmax(1)
    explainers = [Gradient(), GuidedBackprop(), LRP(), IntegratedGradients(steps=30),
                  AggMean(members=[LRP(), GuidedBackprop(), Gradient()])]
    for ex in explainers:
        h_t = ex(model, x_t, cls_t)
        rates = {}
        for batch in (1, big):
            n = batch if batch > 1 else min(4, big)  # batch 1: four pairs one after the other
            its = args.map_iterations if ex.name != "integrated_gradients" else 1
            att = TargetedMapAttack(iterations=its, batch_size=batch, show_progress=False)
            t = best_time(lambda: att(model, ex, x[:n], cls[:n], h_target=h_t[:n]), 1)
            rates[batch] = n * its / t
        print(f"map attack on vgg_small, {ex.name}: {rate(rates[1])} image-iterations/s at batch 1, "
              f"{rate(rates[big])} at batch {big} -> {rates[big] / rates[1]:.1f}x")


def bench_smoothed(args) -> None:
    from captum.attr import NoiseTunnel, Saliency

    from robex.explainers.noise_tunnel import SmoothGrad
    from robex.models.resnet_cifar import resnet_cifar
    from robex.tasks.cascade import default_units, randomise
    from robex.trainers.fit import fit
    from robex.trainers.losses import CrossEntropy, CurvatureRegularised, PGDAdversarial
    from robex.trainers.optim import OptimiserSpec

    torch.manual_seed(0)
    model = freeze(prepare_model(resnet_cifar(blocks=(1, 1, 1), width=16), torch.device("cpu")))
    n_sg, n_cascade, n_train = min(16, args.images), min(64, args.images), 2 * args.images
    x = torch.rand(n_sg, 3, 32, 32)
    y = torch.randint(0, 10, (n_sg,))
    ours = SmoothGrad(n_samples=50, aggregate="mean_abs", max_batch=800)
    nt = NoiseTunnel(Saliency(model))
    t_ours = best_time(lambda: ours.attribute(model, x, y), args.repeats)
    stdevs = (0.15 * (x.flatten(1).amax(1) - x.flatten(1).amin(1))).mean().item()
    t_captum = best_time(lambda: nt.attribute(x, nt_type="smoothgrad", nt_samples=50, stdevs=stdevs, target=y),
                         args.repeats)
    print(f"SmoothGrad (50 copies, mean |grad|), resnet_small, batch {n_sg}: {rate(n_sg / t_ours)} images/s; "
          f"captum NoiseTunnel(Saliency) {rate(n_sg / t_captum)} -> {t_captum / t_ours:.2f}x")

    units = default_units(model)
    xs, ys = torch.rand(n_cascade, 3, 32, 32), torch.randint(0, 10, (n_cascade,))

    def cascade(n, batch):
        """Every unit randomised in turn (from a fresh copy), each step's maps of n images in
        passes of ``batch`` (robex/tasks/cascade.py's loop; batch 1: one image at a time)."""
        work = copy.deepcopy(model)
        for k, unit in enumerate(units, start=1):
            randomise(work.get_submodule(unit), k)
            for s in range(0, n, batch):
                Gradient().attribute(work, xs[s:s + batch], ys[s:s + batch])

    one = min(4, n_cascade)  # batch 1: four images one after the other
    layers_per_s = {batch: n * len(units) / best_time(lambda: cascade(n, batch), 1)
                    for batch, n in ((1, one), (n_cascade, n_cascade))}
    print(f"cascading randomisation (Gradient), resnet_small, {len(units)} units: "
          f"{rate(layers_per_s[1])} image-layers/s at batch 1, {rate(layers_per_s[n_cascade])} at batch "
          f"{n_cascade} -> {layers_per_s[n_cascade] / layers_per_s[1]:.1f}x")

    xt, yt = torch.rand(n_train, 3, 32, 32), torch.randint(0, 10, (n_train,))
    rates = {}
    for name, loss in (("standard", CrossEntropy()), ("CURE", CurvatureRegularised(units="normalised")),
                       ("PGD-AT (7 steps)", PGDAdversarial(eps=8 / 255))):
        net = resnet_cifar(blocks=(1, 1, 1), width=16)
        t = best_time(lambda: fit(net, loss, xt, yt, epochs=1, batch_size=128, optimiser=OptimiserSpec(),
                                  generator=torch.Generator().manual_seed(0), show_progress=False), 1)
        rates[name] = n_train / t
    print("training resnet_small, samples/s: " + ", ".join(
        f"{k} {rate(v)} ({v / rates['standard']:.2f}x standard)" for k, v in rates.items()))


def bench_smoothed_attacks(args) -> None:
    from robex.attacks.targeted_map import TargetedMapAttack
    from robex.models.vgg import vgg_small
    from robex.threats.colour import Recolor
    from robex.threats.composite import Composite
    from robex.threats.delta import Delta
    from robex.threats.flow import Flow

    torch.manual_seed(0)
    model = freeze(prepare_model(vgg_small(in_channels=3, image_size=32, widths=(32, 64), hidden=256),
                                 torch.device("cpu")))
    big = args.large_batch
    x, x_t = torch.rand(big, 3, 32, 32), torch.rand(big, 3, 32, 32)
    ex = Gradient()
    with torch.no_grad():
        cls, cls_t = model(x).argmax(1), model(x_t).argmax(1)
    h_t = ex(model, x_t, cls_t)
    settings = {"Delta": lambda: Delta(lr=1e-3), "Delta+StAdv": lambda: Composite([Flow(lr=0.01), Delta(lr=1e-3)]),
                "Delta+StAdv+Recolor": lambda: Composite([Recolor(lr=1e-3), Flow(lr=0.01), Delta(lr=1e-3)])}
    for name, make in settings.items():
        rates = {}
        for batch in (1, big):
            n = batch if batch > 1 else min(4, big)  # batch 1: four images one after the other
            att = TargetedMapAttack(iterations=args.map_iterations, batch_size=batch, beta_start=100.0,
                                    beta_end=None, show_progress=False, perturbation=make())
            t = best_time(lambda: att(model, ex, x[:n], cls[:n], h_target=h_t[:n]), 1)
            rates[batch] = n * args.map_iterations / t
        print(f"smoothed attack {name} on vgg_small (32x32 RGB), gradient: {rate(rates[1])} image-iterations/s "
              f"at batch 1, {rate(rates[big])} at batch {big} -> {rates[big] / rates[1]:.1f}x")


def bench_relex(args) -> None:
    from robex.bench.authors_relex import authors_relex
    from robex.explainers.relex import RelEx
    from robex.models.resnet_cifar import resnet_cifar

    torch.manual_seed(0)
    model = freeze(prepare_model(resnet_cifar(blocks=(1, 1, 1), width=16), torch.device("cpu")))
    n = min(32, args.images)
    x, y = torch.rand(n, 3, 32, 32), torch.randint(0, 10, (n,))
    copies = {} if args.relex_copies is None else {"n_noise": args.relex_copies, "max_batch": 2 * args.relex_copies}
    default = RelEx(iterations=args.steps, **copies)  # max_batch: one image's copies both ways
    whole = RelEx(iterations=args.steps, n_noise=default.n_noise, max_batch=2 * default.n_noise * n)
    times = interleaved({"default": lambda: default.attribute(model, x, y),
                         "whole": lambda: whole.attribute(model, x, y),
                         "authors": lambda: authors_relex(model, x, y, iterations=args.steps, n_noise=default.n_noise)}, args.repeats)
    best = {k: min(v) for k, v in times.items()}
    setting = (f"(resnet_small, {n} images, {default.n_noise} copies, {args.steps} iterations, interleaved min "
               f"of {args.repeats}; the authors' loop: two passes of {default.n_noise} copies per image and "
               f"iteration, robex/bench/authors_relex.py)")
    print(f"RelEx, batched over images x copies in passes of max_batch (robex default, {default.max_batch} masked "
          f"inputs = one image's copies both ways): {rate(n / best['default'])} images/s; the authors' per-image loop "
          f"{rate(n / best['authors'])} -> {best['authors'] / best['default']:.2f}x {setting}")
    print(f"RelEx, every image and copy in one pass: {rate(n / best['whole'])} images/s; the authors' per-image "
          f"loop {rate(n / best['authors'])} -> {best['authors'] / best['whole']:.2f}x (batching over images pays "
          f"where one image's copies leave the device idle, a GPU; on a CPU small passes stay in cache)")


def interleaved(fns: dict, rounds: int) -> dict:
    """Seconds of each callable over ``rounds`` rounds, run in turn within each round (after one
    warm-up round), so load changes hit every contender alike."""
    for fn in fns.values():
        fn()
    times = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return times


def min_median(ts: list) -> str:
    return f"min {min(ts):.3f} s, median {statistics.median(ts):.3f} s"


def matmul_peak() -> float:
    """FP32 GFLOP/s of a 1024 x 1024 matmul, best of 50, with this run's torch threads."""
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    t = best_time(lambda: a @ b, 50)
    return 2 * 1024 ** 3 / t / 1e9


def flops(fn) -> float:
    """FLOPs of the convolutions and matmuls (forward and backward, by torch's own formulas in
    ``torch.utils.flop_counter.flop_registry``; elementwise ops are not counted) that one call of
    ``fn`` runs. A dispatch mode of its own: FlopCounterMode's module tracker refuses
    ``autograd.grad`` on a leaf (the authors' double backprop)."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import flop_registry

    class Count(TorchDispatchMode):
        total = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            formula = flop_registry.get(func._overloadpacket)
            if formula is not None:
                self.total += formula(*args, **kwargs, out_val=out)
            return out

    with Count() as count:
        fn()
    return count.total


def flops_per_iteration(run, n: int) -> float:
    """FLOPs of one attack iteration per image: ``run(steps)`` attacks ``n`` images; the difference
    between a 2-step and a 1-step run, over the images."""
    return (flops(lambda: run(2)) - flops(lambda: run(1))) / n


def share_of_peak(flop_per_s: float, peak: float) -> str:
    achieved = flop_per_s / 1e9
    return f"{achieved:.1f} GFLOP/s = {100 * achieved / peak:.0f}% of the matmul peak"


def torch_softplus(model):
    """The same network with torch's own softplus layers (nn.Softplus, what the authors' code builds)
    in place of robex's BetaSoftplus (robex/models/layers.py: the same function to float rounding,
    written with vectorised exp and log), in the authors' layer order (activation before the pool;
    robex's atex_cnn stores the pool first, the same function): the yardstick runs the authors' way,
    layers included."""
    layers = [torch.nn.Softplus(beta=m.beta, threshold=20.0) if type(m).__name__ == "BetaSoftplus" else m
              for m in copy.deepcopy(model)]
    return freeze(torch.nn.Sequential(*order_pool_and_activation(layers, pool_first=False)))


def relu_tanh_atex_cnn(model):
    """The authors' network: atex_cnn's layers in their order with ReLU in the conv part and tanh
    after fc1."""
    layers = [torch.nn.ReLU() if type(m).__name__ == "BetaSoftplus" else m for m in copy.deepcopy(model)]
    layers[-2] = torch.nn.Tanh()
    return freeze(torch.nn.Sequential(*order_pool_and_activation(layers, pool_first=False)))


def bench_side_by_side(args, model, data) -> None:
    from robex.bench.authors_atex import authors_atex_batch, authors_untargeted_attack
    from robex.attacks.optimisers import NormalisedStep

    n, steps, eps = min(args.images, 200), args.steps, 0.08
    x, y = data.test_x[:n], data.test_y[:n]
    peak_start = matmul_peak()
    attack_work = []  # (label, robex batch 64 rate, authors' rate as is, fixed, robex / authors' FLOPs per it.)
    print(f"side by side with the ATEX authors' procedure (robex/bench/authors_atex.py), {n} images x "
          f"{steps} steps, eps {eps}, {args.repeats} interleaved rounds")

    def paper_attack(batch, n_steps=steps):
        return ExplanationManipulation(threat=Threat(budget=eps), objective=TopKSuppression(k=50, top_set="current"),
                                       optimiser=NormalisedStep(0.02, "keep"), returns="last", steps=n_steps,
                                       batch_size=batch, surrogate_beta=None, show_progress=False)

    for label, net in (("softplus atex_cnn", model), ("authors' ReLU + tanh net", relu_tanh_atex_cnn(model))):
        ours = {b: paper_attack(b) for b in (64, 100)}
        theirs = torch_softplus(net)
        times = interleaved({
            "robex batch 64": lambda: ours[64](net, Gradient(), x, y),
            "robex batch 100": lambda: ours[100](net, Gradient(), x, y),
            "authors batch 100": lambda: authors_untargeted_attack(theirs, x, y, eps, steps, broadcast_bug=True),
            "authors batch 100, broadcast fixed": lambda: authors_untargeted_attack(theirs, x, y, eps, steps),
        }, args.repeats)
        m = min(64, n)
        f_ours = flops_per_iteration(lambda k: paper_attack(64, k)(net, Gradient(), x[:m], y[:m]), m)
        f_theirs = flops_per_iteration(lambda k: authors_untargeted_attack(theirs, x[:m], y[:m], eps, k), m)
        its = {name: n * steps / min(ts) for name, ts in times.items()}
        ref = its["authors batch 100"]
        for ours_name in ("robex batch 64", "robex batch 100"):
            print(f"  attack on the {label}, image-iterations/s: robex ({ours_name[6:]}) {rate(its[ours_name])}; "
                  f"authors' code (batch 100) {rate(ref)} -> {its[ours_name] / ref:.2f}x")
        fixed = its["authors batch 100, broadcast fixed"]
        print(f"  attack on the {label}, image-iterations/s: robex (batch 64) {rate(its['robex batch 64'])}; "
              f"authors' code with its top-k broadcasting fixed {rate(fixed)} -> {its['robex batch 64'] / fixed:.2f}x")
        print("    times: " + "; ".join(f"{name} {min_median(ts)}" for name, ts in times.items()))
        attack_work.append((label, its["robex batch 64"], ref, fixed, f_ours, f_theirs))

    seeds = min(args.seeds, 500)
    sub = copy.copy(data)
    sub.train_x, sub.train_y = data.train_x[:seeds], data.train_y[:seeds]
    atex = ATEX(delta=eps, delta_scale=4.0, n_along=2, n_perp=8, show_progress=False)

    authors_teacher = torch_softplus(model)  # the authors' layers (nn.Softplus), the same weights

    def robex_stage(part=sub):
        atex._directions.clear()  # the teacher SmoothGrad is part of robex's cost per seed
        atex.apply_stage(1, model, trainable_copy(model), part)

    def authors_pass(k=seeds) -> int:
        """The authors' fine-tuning over the first k seeds; returns its student samples."""
        s = trainable_copy(authors_teacher)
        opt = torch.optim.Adam(s.parameters(), lr=1.5e-3)
        gen = torch.Generator().manual_seed(0)
        return sum(authors_atex_batch(authors_teacher, s, opt, sub.train_x[i:i + 100], sub.train_y[i:i + 100], eps,
                                      generator=gen) for i in range(0, k, 100))

    times = interleaved({"robex": robex_stage, "authors": authors_pass}, args.repeats)
    t_r, t_a = min(times["robex"]), min(times["authors"])
    ours_n = seeds * (1 + atex.n_along * atex.n_perp)
    # the FLOPs, counted on one batch of seeds and scaled (both procedures' work is linear in the seeds)
    part = min(seeds, 100)
    one_batch = copy.copy(sub)
    one_batch.train_x, one_batch.train_y = sub.train_x[:part], sub.train_y[:part]
    f_r = flops(lambda: robex_stage(one_batch)) * seeds / part
    authors_part = {}
    f_a = flops(lambda: authors_part.update(n=authors_pass(part))) * seeds / part
    authors_n = authors_part["n"] * seeds / part
    per_sample = (ours_n / t_r) / (authors_n / t_a)
    print(f"  ATEX fine-tuning, student samples/s: robex {rate(ours_n / t_r)}; authors' code "
          f"{rate(authors_n / t_a)} -> {per_sample:.2f}x per student sample")
    print(f"  ATEX fine-tuning, seeds/s: robex {rate(seeds / t_r)}; authors' code {rate(seeds / t_a)} "
          f"-> {t_a / t_r:.2f}x per seed")
    print(f"    ({seeds} seeds; robex: 1 step on 17 student samples per seed, teacher SmoothGrad included, "
          f"{min_median(times['robex'])}; authors' code: 10 SmoothGrad copies + 4 steps x 16 samples per seed, "
          f"{min_median(times['authors'])})")
    floor_flops, floor_text = reproduction_floor(data, model, teacher=authors_teacher)

    # the peak: the higher of two measurements, at the section's start and end (a busy moment only
    # lowers a measurement, and a low peak would make the bounds and the floor too tight)
    peak_end = matmul_peak()
    peak = max(peak_start, peak_end)
    print(f"  FP32 matmul peak {peak:.1f} GFLOP/s (the higher of {peak_start:.1f} at the section's start and "
          f"{peak_end:.1f} at its end, best of 50 each):")
    for label, ours, ref, fixed, f_ours, f_theirs in attack_work:
        print(f"  attack on the {label}: robex batch 64 reaches {share_of_peak(f_ours * ours, peak)} "
              f"({f_ours / 1e6:.1f} MFLOP per image-iteration); the authors' code with the broadcasting fixed "
              f"{share_of_peak(f_theirs * fixed, peak)} ({f_theirs / 1e6:.1f} MFLOP); at the peak, robex's "
              f"arithmetic would run at most {peak * 1e9 / f_ours / ref:.1f}x the authors' code as is and "
              f"{peak * 1e9 / f_ours / fixed:.1f}x with the broadcasting fixed (the bound for this procedure on "
              f"this CPU)")
    print(f"  ATEX fine-tuning: robex reaches {share_of_peak(f_r / t_r, peak)} ({f_r / seeds / 1e6:.1f} MFLOP per "
          f"seed, {f_r / ours_n / 1e6:.1f} per student sample); the authors' code {share_of_peak(f_a / t_a, peak)} "
          f"({f_a / seeds / 1e6:.1f} MFLOP per seed, {f_a / authors_n / 1e6:.1f} per student sample); at the "
          f"peak robex's arithmetic would run {(ours_n * peak * 1e9 / f_r) / (authors_n / t_a):.1f}x the "
          f"authors' per student sample (a bound for this procedure on this CPU)")
    print(f"  {floor_text}: {floor_flops / 1e12:.0f} TFLOP of convolutions and matmuls, "
          f"{floor_flops / (peak * 1e9) / 60:.0f} min at this run's matmul peak of {peak:.1f} GFLOP/s "
          f"({torch.get_num_threads()} threads): the floor of a cold run on this CPU")


def trainable_copy(net):
    """A deep copy of the (frozen) network with every parameter requiring grad: a student."""
    s = copy.deepcopy(net)
    for p in s.parameters():
        p.requires_grad_(True)
    return s


def reproduction_floor(data, model, teacher) -> tuple[float, str]:
    """The arithmetic of make reproduce-atex's atex_authors fine-tuning alone (issue 14 goal 3): one
    batch of robex's ATEXAuthors counted, scaled to conf/defense/atex_authors.yaml's epochs, the
    FashionMNIST training seeds and atex_tab1's eps sweep (one model per eps; Table 2 and Fig. 2
    reuse them); returns (FLOPs, what they are). At the matmul peak, the least a cold reproduction can
    take on this CPU, whatever else it does."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from robex.defenses.atex import ATEXAuthorsLoss

    conf = ROOT / "conf"
    n_models = len(str(OmegaConf.load(conf / "paper" / "atex_tab1.yaml").hydra.sweeper.params["threat.budget"]).split(","))
    # the defense as the config builds it; its three interpolations (threat, seed, progress) set here
    spec = OmegaConf.merge(OmegaConf.load(conf / "defense" / "atex_authors.yaml"),
                           {"delta": 0.08, "seed": 0, "show_progress": False})
    defense = instantiate(spec)
    student = trainable_copy(model)
    loss = ATEXAuthorsLoss(defense, teacher)
    b = defense.batch_size
    x, y = data.train_x[:b], data.train_y[:b]

    def one_batch():
        step = loss.prepare(student, x, y, None, torch.Generator().manual_seed(0))
        for _ in range(defense.inner_steps):
            step(student)

    total = flops(one_batch) / b * len(data.train_x) * defense.epochs * n_models
    return total, (f"make reproduce-atex, the atex_authors fine-tuning alone ({n_models} FashionMNIST models x "
                   f"{defense.epochs} epochs x {len(data.train_x):,} seeds)")


if __name__ == "__main__":
    main()
