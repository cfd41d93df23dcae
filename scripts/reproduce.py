"""Run every preset of a paper in sequence: `python scripts/reproduce.py atex`.

Prints a line per finished job (from run.py's log) and per preset, and the total wall time. It is
resumable: trained models and finished jobs are cached (.cache/), so after an interruption a re-run
only computes what is missing. Extra arguments are passed to every run.py call
(e.g. `debug=tiny`). After the presets, the paper's claims report is generated
from conf/claims/<paper>.yaml if it has one.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PAPERS = {
    "atex": ["atex_tab1", "atex_tab2", "atex_tab3", "atex_tab4", "atex_fig2", "atex_fig3", "atex_fig4"],
    "aggmean": ["aggmean_tab1", "aggmean_tab3", "aggmean_fig2", "aggmean_fig11_14", "aggmean_fig5",
                "aggmean_fig4", "aggmean_tab4", "aggmean_tab2", "aggmean_tab1_equal_lr"],
}
_JOB_DONE = re.compile(r"job done in ([0-9.]+) s")
_LAUNCH = re.compile(r"#(\d+) : (.*)")


def may_be_unavailable(preset: str) -> bool:
    """A preset whose data cannot exist offline names a ``paper.render_unavailable``: a missing-data
    error then renders its table as unavailable instead of failing the run."""
    from omegaconf import OmegaConf

    paper = OmegaConf.load(ROOT / "conf" / "paper" / f"{preset}.yaml").get("paper") or {}
    return "render_unavailable" in paper


def run_preset(preset: str, extra: list[str]) -> tuple[int, str]:
    cmd = [sys.executable, "run.py", f"paper={preset}", *extra]
    env = dict(os.environ, PYTHONUNBUFFERED="1")  # job lines as they happen
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            bufsize=1, env=env)
    current, tail, error, cached = "", [], "", False
    for line in proc.stdout:
        tail = (tail + [line])[-40:]
        m = _LAUNCH.search(line)
        if m:
            current = f"job #{m.group(1)}: {m.group(2).replace(f'paper={preset}', '').strip()}"
            cached = False
        cached = cached or "cached result reused" in line
        m = _JOB_DONE.search(line)
        if m:
            print(f"  [{preset}] {current} done in {float(m.group(1)):.1f} s{' (cached)' if cached else ''}",
                  flush=True)
        if "robex error" in line or "Error executing job" in line:
            error = error or line.strip()
            print(line.rstrip(), flush=True)
    proc.wait()
    if proc.returncode != 0 and not may_be_unavailable(preset):
        sys.stdout.write("".join(tail))
    return proc.returncode, error


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in PAPERS:
        print(f"usage: reproduce.py {{{','.join(PAPERS)}}} [run.py overrides...]", file=sys.stderr)
        return 2
    paper, extra = argv[0], argv[1:]
    t0 = time.perf_counter()
    for i, preset in enumerate(PAPERS[paper], 1):
        t = time.perf_counter()
        print(f"[{i}/{len(PAPERS[paper])}] {preset} ...", flush=True)
        rc, error = run_preset(preset, extra)
        status = "done" if rc == 0 else "FAILED"
        if rc != 0 and may_be_unavailable(preset) and error.startswith("robex error"):
            from robex.report.callback import render_unavailable_preset

            render_unavailable_preset(preset, error.removeprefix("robex error: "), extra)
            rc, status = 0, "UNAVAILABLE (rendered with the reason)"
        print(f"[{i}/{len(PAPERS[paper])}] {preset} {status} in {time.perf_counter() - t:.0f} s", flush=True)
        if rc != 0:
            return rc
    if (ROOT / "conf" / "claims" / f"{paper}.yaml").exists():  # the claims engine, on the results
        results = [a.split("=", 1)[1] for a in extra if a.startswith("paths.results_dir=")] or ["results"]
        subprocess.run([sys.executable, "-m", "robex.report.claims", paper, results[-1]], cwd=ROOT, check=True)
    print(f"{paper}: all presets done in {time.perf_counter() - t0:.0f} s "
          f"({(time.perf_counter() - t0) / 60:.1f} min)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
