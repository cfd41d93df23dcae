"""Fault injection (slow: `make test-slow`): a run killed with SIGKILL (what `kill -9` does) during
training, during a job and during rendering loses no finished work, leaves no half-written file, and
a plain re-run ends with tables identical to an uninterrupted run's.

The kill comes from robex itself at a named point (``ROBEX_FAILPOINT``, robex/utils.py:failpoint),
so each test kills at exactly the moment it names. Corrupted and NaN checkpoints, a different data
root with a warm cache and unwritable folders are covered in test_cache.py, test_trainers.py,
test_data_identity.py, test_config.py and test_end_to_end.py."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
PRESET = "atex_tab1"


def _run(tmp: Path, data_root, sweep: str, failpoint: str | None = None):
    env = dict(os.environ, PYTHONPATH=str(ROOT), ROBEX_FASHION_MNIST_ROOT=str(data_root))
    env.pop("ROBEX_FAILPOINT", None)
    if failpoint:
        env["ROBEX_FAILPOINT"] = failpoint
    args = [sys.executable, "run.py", f"paper={PRESET}", "debug=tiny", "progress=false",
            f"paths.cache_dir={tmp}/cache", f"hydra.sweep.dir={tmp}/{sweep}", f"paths.results_dir={tmp}/results"]
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


def _numbers(results: Path) -> dict:
    """What a reader takes from a rendered preset: the table and the rows (never the wall time)."""
    out = results / PRESET
    return {"table.csv": (out / "table.csv").read_text(), "table.md": (out / "table.md").read_text(),
            "metrics": pd.read_csv(out / "metrics.csv")
            .sort_values(["defense", "attack", "budget", "metric"]).reset_index(drop=True).to_csv()}


def _half_written(tmp: Path) -> list[Path]:
    return [p for p in tmp.rglob("*") if p.is_file() and (".tmp" in p.name or p.name.startswith(".robex-"))]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, fashion_standin):
    tmp = tmp_path_factory.mktemp("uninterrupted")
    r = _run(tmp, fashion_standin, "sweep")
    assert r.returncode == 0, r.stderr[-3000:]
    return _numbers(tmp / "results")


@pytest.mark.slow
@pytest.mark.parametrize("point", ["train_epoch", "job_result", "render"])
def test_kill_9_then_rerun_gives_the_uninterrupted_tables(point, reference, tmp_path, fashion_standin):
    killed = _run(tmp_path, fashion_standin, "sweep_killed", failpoint=point)
    assert killed.returncode == -signal.SIGKILL, (killed.returncode, killed.stderr[-2000:])
    assert _half_written(tmp_path) == []
    models = sorted((tmp_path / "cache").rglob("models/*"))
    jobs = sorted((tmp_path / "cache").rglob("jobs/*"))
    if point == "train_epoch":  # killed inside the first training: nothing cached, nothing rendered
        assert models == [] and jobs == []
    if point == "job_result":  # the model the job trained survives; the job's result was never cached
        assert models and jobs == []
    if point == "render":  # every job finished and cached; the table was never written
        assert len([j for j in jobs if j.suffix == ".json"]) == 27
        assert not (tmp_path / "results" / PRESET / "table.csv").exists()

    again = _run(tmp_path, fashion_standin, "sweep_resumed")
    assert again.returncode == 0, again.stderr[-3000:]
    log = again.stdout + again.stderr
    if point == "render":
        assert log.count("cached result reused") == 27 and "trained in" not in log
    if point == "job_result":
        assert "baseline model: cached" in log
    assert _numbers(tmp_path / "results") == reference
    assert _half_written(tmp_path) == []

