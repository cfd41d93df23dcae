"""Re-render a preset's table or curve figure from its committed rows, without recomputing:

    python -m robex.report.rerender aggmean_tab1 [results_dir]

For a change of layout or wording in a preset (a title, a column, a label) after its jobs ran. It
reads ``<results_dir>/<preset>/metrics.csv`` (what the jobs wrote), renders with the preset as it is
now, leaves metrics.csv untouched and adds a line to run.md. Only renderers that draw from rows can
do this; galleries and per-sample figures draw from the jobs' arrays, which are not committed: they
need the preset run again (from the cache, or recomputed), and this refuses them with that message.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate

from robex.errors import RobexError
from robex.report.schema import read_metrics

FROM_ROWS = ("robex.report.pivot.render_pivot", "robex.report.plot.render_plot", "robex.report.seeds.render_seeds")
CONF = Path(__file__).resolve().parents[2] / "conf"


def rerender(preset: str, results: Path) -> Path:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"paper={preset}"])
    paper = cfg.paper
    target = str(paper.render._target_)
    if target not in FROM_ROWS:
        raise RobexError(f"{preset} is drawn by {target} from the jobs' arrays, which are not committed: "
                         f"run `python run.py paper={preset}` instead (cached jobs make it quick)")
    out_dir = Path(results) / preset
    rows_file = out_dir / "metrics.csv"
    if not rows_file.exists():
        raise RobexError(f"{rows_file} does not exist: run `python run.py paper={preset}` first")
    render = instantiate(paper.render, _partial_=True)
    render(read_metrics([rows_file]), paper, out_dir, arrays=[])
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=CONF.parent, capture_output=True,
                            text=True).stdout.strip() or "unknown"
    with open(out_dir / "run.md", "a") as fh:
        fh.write(f"- re-rendered from this metrics.csv without recomputing (python -m robex.report.rerender), "
                 f"code at {commit}, {time.strftime('%Y-%m-%d')}\n")
    return out_dir


if __name__ == "__main__":
    try:
        print(rerender(sys.argv[1], Path(sys.argv[2] if len(sys.argv) > 2 else "results")))
    except (RobexError, IndexError) as exc:
        print(f"robex error: {exc if isinstance(exc, RobexError) else 'usage: python -m robex.report.rerender <preset> [results_dir]'}",
              file=sys.stderr)
        sys.exit(2)
