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
                          capture_output=True, text=True, timeout=120)


def test_bench_script_imports_robex_and_lists_its_options(tmp_path):
    r = _run_script("bench.py", ["--help"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "--map-iterations" in r.stdout


def test_reproduce_script_names_the_papers_on_bad_input(tmp_path):
    r = _run_script("reproduce.py", ["no_such_paper"], tmp_path)
    assert r.returncode != 0
    assert "atex" in (r.stdout + r.stderr) and "aggmean" in (r.stdout + r.stderr)
    assert "Traceback" not in r.stderr
