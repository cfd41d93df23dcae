"""The one tidy long-format schema of every job's ``metrics.csv`` (one row per metric value), shared
by all papers, so a defense x attack x explainer matrix across papers is one pivot over all
``metrics.csv`` files.

| column             | meaning                                                                     |
|--------------------|-----------------------------------------------------------------------------|
| run_name           | the job's ``run_name`` config value                                         |
| paper              | paper key of the preset (``atex``, ``aggmean``, ...), empty outside presets  |
| artifact           | preset name (``atex_tab1``, ...), empty outside presets                      |
| dataset            | dataset option (``fashion_mnist``, ``mnist5k``, ...)                          |
| source             | where the images came from (path or package); a subset says so              |
| model              | model option                                                                |
| explainer          | the explainer whose maps the metric scores                                  |
| attack             | attack option (``none`` for clean measurements)                             |
| attacked_explainer | the explainer the attack optimised against (empty: no attack, or an attack  |
|                    | on the prediction or a random control)                                      |
| threat             | the attack's threat: ``linf`` / ``l2`` (additive ball), ``unconstrained``,   |
|                    | ``none``, ``flow`` (StAdv), or a composite's parts with their budgets        |
|                    | (``flow:0.05+linf:0.0314``) (see robex/threats)                              |
| budget             | the threat's radius (NaN without a ball, or for a composite)                 |
| units              | ``pixel`` ([0, 1] images), ``normalised``, ``grid`` (a flow in grid_sample   |
|                    | coordinates), parts joined by '+' for a composite; empty without a ball      |
| defense            | defense option                                                              |
| defense_budget     | the defense's own magnitude (ATEX's eps1, adversarial training's eps; NaN    |
|                    | for none)                                                                   |
| step               | position on the row's step axis (0 where there is none)                     |
| step_axis          | what ``step`` counts: ``defense_stage`` (ATEX iterations applied), ...       |
| seed               | the job's seed                                                              |
| n                  | number of samples behind the value                                          |
| metric             | metric name (see the task's docstring)                                      |
| metric_params      | the metric's parameters, ``k=v`` joined by ``;`` (empty: none)              |
| higher_is_better   | the metric's score direction (empty where it has none, e.g. attack facts)   |
| value              | the value: a mean over the n samples, unrounded                             |
| se                 | its standard error (std / sqrt(n)); NaN where not a mean                    |

Several seeds of one configuration are several rows; renderers and the claims engine average them.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from robex.errors import RobexError
from robex.utils import atomic_write_text

# Version of the row schema; part of every job's cache key, so cached rows always have these columns.
ROWS_VERSION = 2

COLUMNS = ["run_name", "paper", "artifact", "dataset", "source", "model", "explainer", "attack",
           "attacked_explainer", "threat", "budget", "units", "defense", "defense_budget", "step",
           "step_axis", "seed", "n", "metric", "metric_params", "higher_is_better", "value", "se"]

# Columns that identify a configuration (everything but the measured numbers and the run's name).
KEYS = [c for c in COLUMNS if c not in ("run_name", "n", "value", "se")]


def metric_columns(metric) -> dict:
    """``metric_params`` and ``higher_is_better`` of a :class:`robex.metrics.base.Metric`."""
    params = ";".join(f"{k}={v}" for k, v in sorted(metric.params().items()))
    return {"metric_params": params, "higher_is_better": bool(metric.info.higher_is_better)}


def conform(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows with exactly the schema's columns, in order (missing ones empty). A column the schema
    does not know is an error, never dropped: add it to COLUMNS (and this docstring) first."""
    unknown = [c for c in rows.columns if c not in COLUMNS]
    if unknown:
        raise RobexError(f"metrics rows carry columns the schema does not know: {unknown} "
                         f"(known: {COLUMNS}; see robex/report/schema.py)")
    rows = rows.copy()
    for col in COLUMNS:
        if col not in rows:
            rows[col] = ""
    return rows[COLUMNS]


def write_metrics(rows: pd.DataFrame, path: str | Path) -> None:
    atomic_write_text(path, conform(rows).to_csv(index=False))


def read_metrics(paths) -> pd.DataFrame:
    """All rows of the given ``metrics.csv`` files; a file of another schema is an error that names it."""
    frames = []
    for p in paths:
        frame = pd.read_csv(p)
        if list(frame.columns) != COLUMNS:
            raise RobexError(f"{p} is not a robex metrics.csv of schema version {ROWS_VERSION} "
                             f"(columns {list(frame.columns)}); re-run its preset")
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    return pd.concat(frames, ignore_index=True)
