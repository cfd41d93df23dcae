"""Run every preset of a paper in sequence: `python scripts/reproduce.py atex`.

Prints a line per finished job (read from the job's own ``job.json`` and ``.hydra/overrides.yaml``
in the sweep folder the driver chooses) and per preset, and the total wall time. It is
resumable: trained models and finished jobs are cached (.cache/), so after an interruption a re-run
only computes what is missing. Extra arguments are passed to every run.py call
(e.g. `debug=tiny`, or `hydra/launcher=slurm hydra.launcher.partition=<p>`). After the presets,
the paper's claims report is generated from conf/claims/<paper>.yaml if it has one, and the results
index (results/README.md) is rewritten.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from robex.report.index import PAPERS, write_index  # noqa: E402  (the presets of each paper, in order)


def may_be_unavailable(preset: str) -> bool:
    """A preset whose data cannot exist offline names a ``paper.render_unavailable``: a missing-data
    error then renders its table as unavailable instead of failing the run."""
    from omegaconf import OmegaConf

    paper = OmegaConf.load(ROOT / "conf" / "paper" / f"{preset}.yaml").get("paper") or {}
    return "render_unavailable" in paper


def sweep_dir(preset: str, extra: list[str]) -> Path:
    """The sweep folder the driver gives the preset (where its jobs write ``job.json``)."""
    outputs = [a.split("=", 1)[1] for a in extra if a.startswith("paths.outputs=")] or ["outputs"]
    path = Path(outputs[-1]) / preset / time.strftime("%Y-%m-%d_%H-%M-%S")
    return path if path.is_absolute() else ROOT / path


class JobReporter:
    """Prints one line per job of a sweep folder as soon as its ``job.json`` exists."""

    def __init__(self, preset: str, folder: Path):
        self.preset, self.folder, self.seen = preset, folder, set()
        self.stages: dict[str, float] = {}  # seconds per stage over the jobs computed (not reused)
        self.job_seconds = 0.0

    def poll(self) -> None:
        import json

        from omegaconf import OmegaConf

        for path in sorted(self.folder.glob("*/job.json"), key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0):
            if path in self.seen:
                continue
            self.seen.add(path)
            job = json.loads(path.read_text())
            self.job_seconds += job["seconds"]
            for stage, seconds in (job.get("stages_s") or {}).items():
                self.stages[stage] = self.stages.get(stage, 0.0) + seconds
            overrides_file = path.parent / ".hydra" / "overrides.yaml"
            overrides = OmegaConf.load(overrides_file) if overrides_file.exists() else []
            shown = " ".join(o for o in overrides if not o.startswith(("paper=", "paths.")))
            print(f"  [{self.preset}] job #{path.parent.name}: {shown} done in {job['seconds']:.1f} s"
                  f"{' (cached)' if job.get('cached') else ''}", flush=True)


def time_split(totals: dict, wall: float) -> str:
    """One line: where a run's wall time went, per stage, with the rest (process start, configs,
    rendering, cache reads) as ``rendering and overhead``."""
    spent = dict(sorted(totals.items(), key=lambda kv: -kv[1]))
    spent["rendering and overhead"] = max(0.0, wall - sum(totals.values()))
    return ", ".join(f"{name} {seconds:.0f} s ({100 * seconds / max(wall, 1e-9):.0f}%)"
                     for name, seconds in spent.items())


def run_preset(preset: str, extra: list[str], totals: dict | None = None) -> tuple[int, str]:
    folder = sweep_dir(preset, extra)
    cmd = [sys.executable, "run.py", f"paper={preset}", *extra, f"hydra.sweep.dir={folder}"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")  # errors as they happen
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            bufsize=1, env=env)
    reporter = JobReporter(preset, folder)
    tail, error = [], ""
    for line in proc.stdout:
        tail = (tail + [line])[-40:]
        reporter.poll()
        if "robex error" in line or "Error executing job" in line:
            error = error or line.strip()
            print(line.rstrip(), flush=True)
    proc.wait()
    reporter.poll()
    if totals is not None:
        for stage, seconds in reporter.stages.items():
            totals[stage] = totals.get(stage, 0.0) + seconds
    if proc.returncode != 0 and not may_be_unavailable(preset):
        sys.stdout.write("".join(tail))
    return proc.returncode, error


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in PAPERS:
        print(f"usage: reproduce.py {{{','.join(PAPERS)}}} [run.py overrides...]", file=sys.stderr)
        return 2
    paper, extra = argv[0], argv[1:]
    t0 = time.perf_counter()
    totals: dict[str, float] = {}
    for i, preset in enumerate(PAPERS[paper], 1):
        t = time.perf_counter()
        print(f"[{i}/{len(PAPERS[paper])}] {preset} ...", flush=True)
        rc, error = run_preset(preset, extra, totals)
        status = "done" if rc == 0 else "FAILED"
        if rc != 0 and may_be_unavailable(preset) and error.startswith("robex error"):
            from robex.report.callback import render_unavailable_preset

            render_unavailable_preset(preset, error.removeprefix("robex error: "), extra)
            rc, status = 0, "UNAVAILABLE (rendered with the reason)"
        print(f"[{i}/{len(PAPERS[paper])}] {preset} {status} in {time.perf_counter() - t:.0f} s", flush=True)
        if rc != 0:
            return rc
    results = ([a.split("=", 1)[1] for a in extra if a.startswith("paths.results_dir=")] or ["results"])[-1]
    if (ROOT / "conf" / "claims" / f"{paper}.yaml").exists():  # the claims engine, on the results
        subprocess.run([sys.executable, "-m", "robex.report.claims", paper, results], cwd=ROOT, check=True)
    print(f"results index: {write_index(ROOT / results)}", flush=True)
    wall = time.perf_counter() - t0
    print(f"{paper}: all presets done in {wall:.0f} s ({wall / 60:.1f} min)", flush=True)
    print(f"where the time went: {time_split(totals, wall)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
