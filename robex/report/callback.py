"""Hydra callback: when a preset's sweep ends, render its table / figure from the jobs' rows.

It runs once, in the process that launched the sweep, after every job finished, and reads what the
jobs wrote into the sweep folder (``*/metrics.csv``, ``*/arrays.npz``, ``*/samples.npz``,
``*/job.json``), never in-memory state, so it works the same whichever launcher ran the jobs (basic,
joblib, submitit). The jobs' per-image values go to ``results/<artifact>/samples.npz``."""
from __future__ import annotations

import json
import logging
import re
import shlex
import sys
import time
from pathlib import Path

import torch
from hydra.experimental.callback import Callback
from hydra.utils import instantiate
from omegaconf import DictConfig

from robex.report.samples import collect as collect_samples
from robex.report.schema import read_metrics, write_metrics
from robex.utils import atomic_write_text, failpoint, machine_description

log = logging.getLogger("robex")


def job_processes(jobs: list[dict]) -> str:
    """How the computed jobs ran: torch's thread count in each job and the number of worker
    processes (a parallel launcher runs several single-threaded workers, not one process with all
    the cores)."""
    ran = [j for j in jobs if not j.get("cached") and j.get("threads")]
    if not ran:
        return "none computed in this sweep (all reused from the cache)"
    threads = sorted({int(j["threads"]) for j in ran})
    workers = len({j.get("pid") for j in ran})
    return (f"torch on {'/'.join(map(str, threads))} thread{'s' if threads != [1] else ''} per job, "
            f"{workers} worker process{'es' if workers != 1 else ''}")


# run.md's compute-time line as written by _compute_line; read back by _same_jobs and the results index
COMPUTE_RECORD = re.compile(r"compute time of its jobs when first computed: (\d+) s \(sum over (\d+) jobs")


def _compute_line(jobs: list[dict]) -> tuple[str, float, int]:
    known = [j["compute_s"] for j in jobs if j.get("compute_s") is not None]
    total = sum(known)
    return (f"- compute time of its jobs when first computed: {total:.0f} s (sum over {len(known)} jobs; "
            f"models or defenses they loaded from the model cache, built by an earlier run, are not counted)",
            total, len(known))


def _same_jobs(previous: str, total_s: float, n: int) -> bool:
    """Whether an earlier run.md describes these jobs: its compute-time line names the same number of
    jobs and the same total (the cached jobs keep the compute time they were first computed in)."""
    found = COMPUTE_RECORD.search(previous)
    return bool(found) and int(found.group(2)) == n and int(found.group(1)) == int(f"{total_s:.0f}")


def _reused_origin(jobs: list[dict]) -> str:
    """Where the reused jobs were computed, from their cache records (absent for jobs cached before
    robex recorded it)."""
    reused = [j for j in jobs if j.get("cached")]
    if not reused:
        return ""
    machines = sorted({j["computed_on"] for j in reused if j.get("computed_on")})
    dates = sorted(j["computed_at"] for j in reused if j.get("computed_at"))
    unknown = sum(not j.get("computed_on") for j in reused)
    parts = []
    if machines:
        span = dates[0] if dates[0] == dates[-1] else f"{dates[0]} to {dates[-1]}"
        parts.append(f"on {'; '.join(machines)}, {span}")
    if unknown:
        parts.append(f"{unknown} of them before robex recorded where (see the run that computed them)")
    return f"- the reused jobs were computed earlier: {'; '.join(parts)}\n"


def seed_line(seeds) -> str:
    """run.md's seed line: ``- seed: 0``, or ``- seeds: 0, 1, 2 (3)`` for a sweep over seeds."""
    seeds = sorted({int(s) for s in ([seeds] if isinstance(seeds, int) else seeds)})
    if len(seeds) == 1:
        return f"- seed: {seeds[0]}"
    return f"- seeds: {', '.join(str(s) for s in seeds)} ({len(seeds)}; each trains its own models)"


def provenance(paper: DictConfig, seeds, wall_s: float, jobs: list[dict], previous: str | None) -> str:
    """run.md: command, seed(s) (an int, or the seeds the sweep's rows span), machine, wall time. A sweep whose jobs all came from the cache keeps the
    earlier run's record (the cold cost) when that record describes the same jobs (same count and
    total compute time), and only adds when it was re-rendered; otherwise it writes a new record
    that says where the reused jobs were computed."""
    now = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    n_cached = sum(bool(j.get("cached")) for j in jobs)
    compute_line, total_s, n_known = _compute_line(jobs)
    if previous and jobs and n_cached == len(jobs) and _same_jobs(previous, total_s, n_known):
        kept = [line for line in previous.splitlines() if not line.startswith("- re-rendered")]
        return "\n".join(kept) + f"\n- re-rendered from the cache: {now} ({wall_s:.0f} s)\n"
    command = "python run.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    return (f"# {paper.name}: how this was made\n\n"
            f"- command: `{command}`\n{seed_line(seeds)}\n- machine: {machine_description()}\n"
            f"- jobs: {job_processes(jobs)}\n"
            f"- wall time of the sweep: {wall_s:.0f} s ({len(jobs)} jobs, {n_cached} of them reused from "
            f"the cache of earlier presets or runs)\n"
            f"{_reused_origin(jobs)}"
            f"{compute_line}\n"
            f"- finished: {now}\n")


def job_arrays(sweep_dir: Path) -> list[dict]:
    """Figure data of each job that wrote ``arrays.npz``, tagged with its dataset, source, explainer,
    defense, model, attack and attack budget (``_dataset``, ``_source``, ``_explainer``, ...,
    ``_budget``)."""
    import numpy as np
    import pandas as pd

    out = []
    for path in sorted(sweep_dir.glob("*/arrays.npz"), key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0):
        rows = pd.read_csv(path.parent / "metrics.csv")
        with np.load(path) as f:
            arrays = {k: f[k] for k in f.files}
        arrays["_dataset"], arrays["_source"] = str(rows["dataset"].iloc[0]), str(rows["source"].iloc[0])
        for col in ("explainer", "defense", "model", "attack"):
            arrays[f"_{col}"] = str(rows[col].iloc[0])
        arrays["_budget"] = float(rows["budget"].iloc[0]) if "budget" in rows.columns else float("nan")
        out.append(arrays)
    return out


def render_preset(rows, paper: DictConfig, out_dir: Path, arrays: list[dict] | None = None) -> None:
    """Write the sweep's rows and the preset's rendered artifact into out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_metrics(rows, out_dir / "metrics.csv")
    failpoint("render")
    render = instantiate(paper.render, _partial_=True)
    render(rows, paper, out_dir, arrays=arrays or [])


# Command-line overrides that leave a preset's numbers as the preset defines them (where data, cache
# and outputs live, debug size, device, progress bars).
NEUTRAL_OVERRIDES = ("paper=", "paths.", "hydra.", "debug=", "device=", "progress=", "use_cache=",
                     "dataset.root=", "dataset.system_dir=", "dataset.download=")


def changed_overrides(overrides: list[str]) -> list[str]:
    """The overrides of a preset sweep that change what it computes (a narrowed eps list, another
    seed, ...): such a sweep renders beside its jobs, never into ``results/``."""
    return [o for o in overrides if not o.lstrip("+~").startswith(NEUTRAL_OVERRIDES)]


class RenderOnSweepEnd(Callback):
    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        self.t0 = time.perf_counter()

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        from hydra.core.hydra_config import HydraConfig

        HydraConfig.instance().set_config(config)  # so ${hydra:...} in paths resolves here too
        paper = config.get("paper")
        if not paper or not paper.get("name") or not paper.get("render"):
            return
        sweep_dir = Path(config.hydra.sweep.dir)
        files = sorted(sweep_dir.glob("*/metrics.csv"))
        rows = read_metrics(files)
        changed = changed_overrides(list(config.hydra.overrides.task))
        if changed:  # a narrowed or altered sweep must not overwrite the preset's results
            out_dir = sweep_dir / "results" / paper.name
            log.warning("overrides %s change the preset's sweep: rendered into %s, %s left untouched",
                        " ".join(changed), out_dir, Path(config.paths.results_dir) / paper.name)
        else:
            out_dir = Path(config.paths.results_dir) / paper.name
        try:
            from robex.cache import Cache

            cache = Cache(config.paths.cache_dir, enabled=config.get("use_cache", True))
            with cache.lock("render", paper.name, f"rendering {paper.name}"):  # two sweeps of one preset
                render_preset(rows, paper, out_dir, job_arrays(sweep_dir))
                collect_samples(sweep_dir, out_dir)
            wall = time.perf_counter() - self.t0
            jobs = [json.loads(p.read_text()) for p in sorted(sweep_dir.glob("*/job.json"))]
            previous = (out_dir / "run.md").read_text() if (out_dir / "run.md").exists() else None
            seeds = rows["seed"].dropna().tolist() if "seed" in rows.columns and rows["seed"].notna().any() \
                else [config.seed]
            atomic_write_text(out_dir / "run.md", provenance(paper, seeds, wall, jobs, previous))
        except Exception as exc:  # Hydra turns a callback's exception into a warning and exit 0
            print(f"robex error: rendering {paper.name} into {out_dir} failed: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        log.info("rendered %s (%d jobs, %.0f s) -> %s", paper.name, len(files), wall, out_dir)


def render_unavailable_preset(preset: str, reason: str, overrides: list[str] = ()) -> Path:
    """Render a preset whose data is missing with its ``paper.render_unavailable``: the paper's
    numbers beside 'unavailable' and the exact reason (the job's error message)."""
    from hydra import compose, initialize_config_dir

    conf = Path(__file__).resolve().parents[2] / "conf"
    keep = [o for o in overrides if o.startswith("paths.")]
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"paper={preset}", *keep])
    paper = cfg.paper.copy()
    paper.unavailable = f"{paper.get('unavailable', '')} ({reason})".strip()
    out_dir = Path(cfg.paths.results_dir) / preset
    out_dir.mkdir(parents=True, exist_ok=True)
    render = instantiate(paper.render_unavailable, _partial_=True)
    render(None, paper, out_dir)
    atomic_write_text(out_dir / "run.md", f"# {preset}: unavailable\n\n- reason: {reason}\n"
                      f"- machine: {machine_description()}\n- checked: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}\n")
    return out_dir
