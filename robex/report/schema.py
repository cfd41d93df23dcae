"""The fixed long-format schema of every job's ``metrics.csv`` (one row per metric).

| column    | meaning                                                                      |
|-----------|------------------------------------------------------------------------------|
| run_name  | the job's ``run_name`` config value                                          |
| paper     | paper key of the preset (``atex``, ``aggmean``, ...), empty outside presets   |
| artifact  | preset name (``atex_tab1``, ...), empty outside presets                       |
| dataset   | dataset option (``fashion_mnist``, ``mnist5k``, ...)                           |
| source    | where the images came from (path or package); a subset says so               |
| model     | model option                                                                 |
| explainer | explainer option                                                             |
| attack    | attack option (``none`` for clean measurements)                              |
| defense   | defense option                                                               |
| k         | defense stages applied (ATEX iterations; 0 = none)                           |
| eps       | the job's eps (attack budget, ATEX Delta), pixel units in [0, 1]             |
| seed      | the job's seed                                                               |
| n         | number of samples behind the value                                           |
| metric    | metric name (see the task's docstring)                                       |
| value     | the value: a mean over the n samples, unrounded                              |
| se        | its standard error (std / sqrt(n)); NaN where not a mean                      |
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from robex.errors import RobexError
from robex.utils import atomic_write_text

COLUMNS = ["run_name", "paper", "artifact", "dataset", "source", "model", "explainer", "attack",
           "defense", "k", "eps", "seed", "n", "metric", "value", "se"]


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
    frames = [pd.read_csv(p) for p in paths]
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    return pd.concat(frames, ignore_index=True)
