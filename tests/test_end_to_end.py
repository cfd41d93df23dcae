"""`python run.py paper=atex_tab1 debug=tiny` on a generated FashionMNIST stand-in: every job writes
the documented schema, the sweep renders its table, and a re-run recomputes nothing."""
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from robex.report.schema import COLUMNS

ROOT = Path(__file__).resolve().parents[1]


def _run_preset(preset, tmp, data_root, extra=(), check=True):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    flags = [e for e in extra if e.startswith("-")]  # Hydra's flags (-m) go before the overrides
    args = [sys.executable, "run.py", *flags, f"paper={preset}", "debug=tiny", f"dataset.root={data_root}",
            "dataset.system_dir=null", f"paths.cache_dir={tmp}/cache", f"hydra.sweep.dir={tmp}/sweep",
            *[e for e in extra if e not in flags]]
    t0 = time.perf_counter()
    r = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 or not check, r.stderr[-3000:]
    return r, time.perf_counter() - t0


@pytest.fixture(scope="module")
def tiny_tab1(tmp_path_factory, fashion_standin):
    tmp = tmp_path_factory.mktemp("e2e")
    first, t_first = _run_preset("atex_tab1", tmp, fashion_standin)
    return tmp, first, t_first


def test_tiny_sweep_writes_the_schema(tiny_tab1):
    tmp, first, _ = tiny_tab1
    files = sorted((tmp / "sweep").glob("*/metrics.csv"))
    assert len(files) == 27  # 3 budgets x 3 defenses (none, atex, atex_authors) x (authors' attack + robex's strong attack + control)
    for f in files:
        rows = pd.read_csv(f)
        assert list(rows.columns) == COLUMNS
        assert set(rows["metric"]) >= {"accuracy", "spearman", "topk", "label_kept", "linf"}
        assert (rows["artifact"] == "atex_tab1").all() and (rows["paper"] == "atex").all()
        spear = rows.loc[rows.metric == "spearman", "value"].item()
        assert -1 <= spear <= 1
        linf = rows.loc[rows.metric == "linf", "value"].item()
        assert linf <= rows["budget"].iloc[0] + 1e-6 and set(rows["threat"]) == {"linf"}
        assert rows.loc[rows.metric == "label_kept", "value"].item() == 1.0


def test_tiny_sweep_renders_the_table_beside_the_paper(tiny_tab1):
    tmp, _, _ = tiny_tab1
    out = tmp / "sweep" / "results" / "atex_tab1"
    md = (out / "table.md").read_text()
    assert "0.766 /" in md  # the paper's rank correlation for ATEX at eps 0.02, beside robex's
    table = pd.read_csv(out / "table.csv")
    assert table["robex"].notna().all()
    run_md = (out / "run.md").read_text()
    assert run_md.count("wall time") == 1
    assert re.search(r"- jobs: torch on \d+ threads? per job, 1 worker process\n", run_md)  # the basic launcher


def test_each_job_keeps_the_images_behind_its_metric_rows(tiny_tab1):
    """The rank-correlation and top-k rows carry their per-image values (samples.npz, r<i> = row i):
    their finite mean and count are the row's value and n; rows that are not per-image metrics
    (accuracy, the attack's facts) keep none; the sweep gathers them into results/.../samples.npz,
    where the claims engine pairs ATEX and the baseline image by image."""
    import numpy as np

    from robex.report.samples import read_samples

    tmp, _, _ = tiny_tab1
    kept = 0
    for job in sorted((tmp / "sweep").glob("[0-9]*")):
        rows = pd.read_csv(job / "metrics.csv")
        with np.load(job / "samples.npz") as f:
            names = {int(k[1:]): f[k] for k in f.files}
        assert {rows.metric[i] for i in names} == {"spearman", "topk"}
        for i, v in names.items():
            finite = v[np.isfinite(v)]
            assert len(finite) == rows.n[i] and finite.astype(float).mean() == pytest.approx(rows.value[i], abs=1e-6)
        kept += len(names)
    samples = read_samples(tmp / "sweep" / "results" / "atex_tab1")
    assert len(samples.index) == kept == 27 * 2
    assert set(samples.index.artifact) == {"atex_tab1"} and samples.values.shape[1] == samples.n.max()


def test_run_md_counts_the_worker_processes_and_their_threads():
    """A parallel launcher's jobs run single-threaded in several processes: run.md says so, not the
    rendering process's thread count; cached jobs do not count."""
    from robex.report.callback import job_processes

    jobs = [{"threads": 1, "pid": 11}, {"threads": 1, "pid": 12}, {"threads": 1, "pid": 11},
            {"threads": 8, "pid": 13, "cached": True}]
    assert job_processes(jobs) == "torch on 1 thread per job, 2 worker processes"
    assert job_processes([{"threads": 2, "pid": 5}]) == "torch on 2 threads per job, 1 worker process"
    assert job_processes([{"threads": 2, "pid": 5, "cached": True}]).startswith("none computed")


def test_rerun_recomputes_nothing(tiny_tab1, fashion_standin):
    tmp, _, t_first = tiny_tab1
    for kept in (tmp / "sweep").glob("*/samples.npz"):
        kept.unlink()  # a reused job writes its per-image values again, from the cache
    second, t_second = _run_preset("atex_tab1", tmp, fashion_standin)
    log = second.stdout + second.stderr
    assert log.count("cached result reused") == 27
    assert len(list((tmp / "sweep").glob("*/samples.npz"))) == 27
    assert "trained in" not in log and "stage 1 done" not in log
    # a reused job still says where and when it was computed
    from robex.utils import machine_description
    job = json.loads(sorted((tmp / "sweep").glob("*/job.json"))[0].read_text())
    assert job["cached"] and job["computed_on"] == machine_description() and re.fullmatch(r"\d{4}-\d\d-\d\d", job["computed_at"])


def test_run_md_of_a_cached_sweep_keeps_the_record_only_when_it_describes_the_same_jobs():
    """A sweep whose jobs all came from the cache keeps the earlier run.md (its cold cost) only when
    that record is of the same jobs; a record of other jobs (e.g. from before a preset's model changed)
    is replaced by one that says where the reused jobs were computed."""
    from omegaconf import OmegaConf

    from robex.report.callback import provenance

    paper = OmegaConf.create({"name": "p"})
    cold = [{"cached": False, "compute_s": 100.2, "threads": 1, "pid": 1},
            {"cached": False, "compute_s": 50.1, "threads": 1, "pid": 2}]
    first = provenance(paper, 0, 80.0, cold, None)
    assert "compute time of its jobs when first computed: 150 s (sum over 2 jobs" in first
    origin = {"computed_on": "machine A", "computed_at": "2026-12-07"}
    same = [dict(j, cached=True, **origin) for j in cold]
    kept = provenance(paper, 0, 1.0, same, first)
    assert kept.startswith(first.rstrip("\n")) and "re-rendered from the cache" in kept
    other = [dict(j, cached=True, compute_s=j["compute_s"] * 10, **origin) for j in cold]
    fresh = provenance(paper, 0, 1.0, other, first)
    assert "re-rendered from the cache" not in fresh and "1503 s (sum over 2 jobs" in fresh
    assert "- the reused jobs were computed earlier: on machine A, 2026-12-07" in fresh
    legacy = provenance(paper, 0, 1.0, [dict(j, cached=True, compute_s=7.0) for j in cold], first)
    assert "2 of them before robex recorded where" in legacy
    assert "\n- seed: 0\n" in first
    assert "\n- seeds: 0, 1, 2 (3; each trains its own models)\n" in provenance(paper, [2, 0, 1, 0], 1.0, cold, None)


def test_a_sweep_over_seeds_renders_each_seeds_gain_and_a_seed_level_claim(tmp_path, fashion_standin):
    """atex_seeds on two seeds (debug=tiny, narrowed, so it renders beside its jobs): the table's per-seed gain is that seed's ATEX minus baseline row, run.md names
    the seeds, and the claims engine decides Table 1's claim at seed level."""
    from robex.report.claims import evaluate_claim, load_claims

    _run_preset("atex_seeds", tmp_path, fashion_standin,
                ["-m", "threat.budget=0.08", "seed=0,1", "attack=manip_untargeted_paper"])
    out = tmp_path / "sweep" / "results" / "atex_seeds"
    rows = pd.read_csv(out / "metrics.csv")
    per_seed = pd.read_csv(out / "figure.csv")
    assert len(per_seed) == 2 * 2  # metric x seed
    for r in per_seed.itertuples():
        sel = rows[(rows.metric == r.metric) & (rows.seed == r.seed) & ((rows.budget - r.budget).abs() < 1e-9)]
        gain = sel.loc[sel.defense == "atex", "value"].item() - sel.loc[sel.defense == "none", "value"].item()
        assert r.gain == pytest.approx(gain)
    assert "\n- seeds: 0, 1 (2; each trains its own models)\n" in (out / "run.md").read_text()
    claim = next(c for c in load_claims("atex").claims if c.artifact == "atex_seeds" and c.test == "difference")
    result = evaluate_claim(claim, out.parent)
    assert result.cells and all(c.label.endswith("2 seeds, paired over 16 images") for c in result.cells)


def test_a_narrowed_sweep_never_overwrites_the_presets_results(tiny_tab1, fashion_standin):
    """`run.py -m paper=atex_tab1 threat.budget=0.02` computes a part of the preset: it renders beside its own
    jobs and leaves the results folder alone (which a full run would write)."""
    tmp, _, _ = tiny_tab1
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    args = [sys.executable, "run.py", "paper=atex_tab1", "debug=tiny", "threat.budget=0.02", f"dataset.root={fashion_standin}",
            "dataset.system_dir=null", f"paths.cache_dir={tmp}/cache", f"hydra.sweep.dir={tmp}/narrow",
            f"paths.results_dir={tmp}/committed"]
    r = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert not (tmp / "committed" / "atex_tab1").exists()
    assert "change the preset's sweep" in r.stderr + r.stdout
    table = pd.read_csv(tmp / "narrow" / "results" / "atex_tab1" / "table.csv")
    assert set(table.dropna(subset=["robex"])["row"]) == {0.02}  # the other budgets: the paper only


def test_the_schema_rejects_an_unknown_column_instead_of_dropping_it(tmp_path):
    from robex.errors import RobexError
    from robex.report.schema import write_metrics

    rows = pd.DataFrame({"metric": ["spearman"], "value": [0.5], "attacked_method": ["lrp"]})
    with pytest.raises(RobexError, match="attacked_method"):
        write_metrics(rows, tmp_path / "metrics.csv")
    assert not (tmp_path / "metrics.csv").exists()
    write_metrics(rows.drop(columns="attacked_method"), tmp_path / "metrics.csv")
    assert list(pd.read_csv(tmp_path / "metrics.csv").columns) == COLUMNS


def test_a_results_folder_that_cannot_be_written_fails_with_exit_code_2(tiny_tab1, fashion_standin):
    """Rendering into a path that cannot be a folder (a file is in the way) is an error naming the
    path, exit code 2, never a warning with exit code 0 (the jobs come from the cache)."""
    tmp, _, _ = tiny_tab1
    blocker = tmp / "blocker"
    blocker.write_text("a file where a folder should be")
    r, _ = _run_preset("atex_tab1", tmp, fashion_standin, extra=[f"paths.results_dir={blocker}/results"],
                       check=False)
    assert r.returncode == 2, r.stderr[-2000:]
    assert f"robex error: rendering atex_tab1 into {blocker}/results/atex_tab1 failed" in r.stderr
