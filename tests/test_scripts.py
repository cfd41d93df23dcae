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


def test_reproduce_script_names_the_papers_on_bad_input(tmp_path):
    r = _run_script("reproduce.py", ["no_such_paper"], tmp_path)
    assert r.returncode != 0
    assert "atex" in (r.stdout + r.stderr) and "aggmean" in (r.stdout + r.stderr)
    assert "Traceback" not in r.stderr


def test_reproduce_time_split_accounts_for_the_whole_wall_time():
    import importlib.util

    spec = importlib.util.spec_from_file_location("reproduce_script", ROOT / "scripts" / "reproduce.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    line = mod.time_split({"task": 30.0, "training": 50.0}, wall=100.0)
    assert line == "training 50 s (50%), task 30 s (30%), rendering and overhead 20 s (20%)"
