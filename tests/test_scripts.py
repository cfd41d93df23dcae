"""The scripts behind `make bench` and `make reproduce-*` start as plain scripts: from another working
directory, with robex not installed and no PYTHONPATH (as the Makefile runs them)."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run_script(name, args, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, str(ROOT / "scripts" / name), *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)  # seconds when idle; generous for a loaded machine


def test_bench_script_runs_and_its_ratios_match_its_throughputs(tmp_path):
    """A tiny `make bench` from another folder: every section reports, and each printed ratio is the
    quotient of the two throughputs printed beside it (so a ratio cannot be stale or mislabelled)."""
    import re

    args = ["--images", "8", "--steps", "2", "--batch", "8", "--seeds", "1", "--repeats", "1",
            "--map-iterations", "2", "--large-batch", "8", "--relex-copies", "4"]
    r = _run_script("bench.py", args, tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    out = r.stdout
    for section in ("explanation attack", "ATEX fine-tuning", "map attack on vgg_small, agg_mean", "SmoothGrad (50",
                    "cascading randomisation", "training resnet_small", "RelEx, batched", "RelEx, every image",
                    "smoothed attack Delta+StAdv+Recolor", "attack on the softplus atex_cnn",
                    "attack on the authors' ReLU + tanh net", "of the matmul peak", "per student sample"):
        assert section in out
    checked = 0
    for line in out.splitlines():
        if "->" not in line:
            continue
        head, tail = line.split(": ", 1)[1].split("->", 1)
        a, b = (float(v.replace(",", "")) for v in re.findall(r"(?<!batch )(?<![\d,.])(\d[\d,]*(?:\.\d+)?)", head))
        ratio = float(re.match(r" ([0-9.]+)x", tail).group(1))
        # "x -> r" reads either way; printed values have 3 significant digits, the ratio 2 decimals
        assert min(abs(a / b - ratio), abs(b / a - ratio)) <= 0.01 * ratio + 0.051, line
        checked += 1
    assert checked >= 6
    # every share of the peak is the printed GFLOP/s over the peak its section printed
    peaks = [float(v) for v in re.findall(r"FP32 matmul peak ([0-9.]+) GFLOP/s", out)]
    shares = re.findall(r"([0-9.]+) GFLOP/s = (\d+)% of the matmul peak", out)
    assert peaks and len(shares) >= 6
    per_section = len(shares) // len(peaks)
    for i, (achieved, pct) in enumerate(shares):
        assert abs(100 * float(achieved) / peaks[i // per_section] - int(pct)) <= 1.5, (achieved, pct)
    assert out.count("(the bound for this procedure on this CPU)") == 2 * len(peaks)
    assert out.count("per student sample (a bound for this procedure on this CPU)") == len(peaks)
    floors = re.findall(r"alone \(3 FashionMNIST models x 2 epochs x ([\d,]+) seeds\): (\d+) TFLOP .*?, (\d+) min at "
                        r"this run's matmul peak of ([0-9.]+) GFLOP/s", out)
    assert len(floors) == len(peaks)
    for _, tflop, minutes, peak in floors:
        assert abs(float(tflop) * 1e12 / (float(peak) * 1e9) / 60 - int(minutes)) <= 0.5 + 0.5 * int(minutes) / float(tflop)


def _script_module(name):
    """scripts/<name>.py imported as a module (the scripts are not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"{name}_script", ROOT / "scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_bench_flop_count_matches_the_formulas_through_double_backprop():
    """make bench's FLOP count (the share of the matmul peak and the bounds) counts a matmul as
    2 m n k and a convolution's forward, its input gradient and that gradient's own backward (the
    authors' create_graph route, which torch's FlopCounterMode refuses)."""
    import torch

    bench = _script_module("bench")
    a, b = torch.randn(7, 5), torch.randn(5, 3)
    assert bench.flops(lambda: a @ b) == 2 * 7 * 5 * 3
    conv = torch.nn.Conv2d(2, 4, 3, padding=1, bias=False)
    x = torch.randn(3, 2, 6, 6)
    fwd = 2 * 3 * 4 * 6 * 6 * 2 * 9  # 2 x out elements x in channels x kernel
    assert bench.flops(lambda: conv(x)) == fwd

    def double_backprop():
        xr = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(conv(xr).square().sum(), xr, create_graph=True)
        g.abs().sum().backward()

    # forward; input gradient (one conv-sized product); its backward: the input-side product again
    # and the weight gradients of both (the weight requires grad): 2 + 2 further conv-sized products
    assert bench.flops(double_backprop) == 6 * fwd


def test_robex_atex_authors_batch_does_the_arithmetic_of_the_authors_procedure():
    """The floor make bench prints for make reproduce-atex counts robex's ATEXAuthors; one batch of it
    runs exactly the convolutions and matmuls of the authors' step (robex/bench/authors_atex.py), and
    the count does not depend on the micro-batch."""
    import copy

    import torch

    from robex.bench.authors_atex import authors_atex_batch
    from robex.defenses.atex import ATEXAuthors, ATEXAuthorsLoss
    from robex.models.atex_cnn import atex_cnn

    bench = _script_module("bench")
    torch.manual_seed(0)
    teacher = atex_cnn().eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    student = copy.deepcopy(teacher)
    for p in student.parameters():
        p.requires_grad_(True)
    x, y = torch.rand(6, 1, 28, 28), torch.randint(0, 10, (6,))
    defense = ATEXAuthors(delta=0.08, micro_batch=7, show_progress=False)  # micro-batches do not change the count
    loss = ATEXAuthorsLoss(defense, teacher)

    def robex_batch():
        step = loss.prepare(student, x, y, None, torch.Generator().manual_seed(0))
        for _ in range(defense.inner_steps):
            step(student)

    opt = torch.optim.Adam(student.parameters(), lr=1e-3)
    theirs = bench.flops(lambda: authors_atex_batch(teacher, student, opt, x, y, 0.08))
    assert bench.flops(robex_batch) == theirs > 0


def test_reproduce_script_names_the_papers_on_bad_input(tmp_path):
    r = _run_script("reproduce.py", ["no_such_paper"], tmp_path)
    assert r.returncode != 0
    assert "atex" in (r.stdout + r.stderr) and "aggmean" in (r.stdout + r.stderr)
    assert "Traceback" not in r.stderr


def test_reproduce_time_split_accounts_for_the_whole_wall_time():
    line = _script_module("reproduce").time_split({"task": 30.0, "training": 50.0}, wall=100.0)
    assert line == "training 50 s (50%), task 30 s (30%), rendering and overhead 20 s (20%)"
