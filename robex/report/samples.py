"""Per-image values behind a metrics row, so that the claims engine can pair two rows measured on the
same images (a paired bootstrap over images instead of two independent standard errors).

A task that wants its rows' images kept passes ``samples=True`` to
:func:`robex.tasks.common.summary_rows`: each such row carries its per-image values under the key
``_samples`` (never a column). The job (:func:`robex.pipeline.run`) takes them off the rows
(:func:`split_samples`), caches them beside the job's rows (``<cache>/samples/<job key>.npz``) and
writes ``samples.npz`` into the job's folder: one array ``r<i>`` per row i of its ``metrics.csv``.
A sweep's end (:func:`collect`) gathers them into ``results/<artifact>/samples.npz``: ``keys`` (a JSON
list, one mapping of the schema's identifying columns per entry: :data:`robex.report.schema.KEYS`)
and ``values`` (entries x images, float32, NaN where an image has no value or an entry has fewer
images). :func:`read_samples` reads it back as a :class:`Samples`.

Jobs cached before robex kept samples have none: their rows still render, and their claims fall
back to the independent-arms interval (the claims report says which interval each cell used).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from robex.report.schema import KEYS
from robex.utils import atomic_write_npz

FILE = "samples.npz"
_KEY = "_samples"


def split_samples(records: list[dict]) -> tuple[list[dict], dict[str, np.ndarray]]:
    """(records without their ``_samples``, {``r<i>``: float32 values of record i})."""
    out, samples = [], {}
    for i, rec in enumerate(records):
        if _KEY in rec:
            rec = dict(rec)
            samples[f"r{i}"] = np.asarray(rec.pop(_KEY), dtype=np.float32).ravel()
        out.append(rec)
    return out, samples


def attach(record: dict, values) -> dict:
    """``record`` carrying its per-image values (a 1-d array or tensor)."""
    return {**record, _KEY: np.asarray(values, dtype=np.float32).ravel()}


def _job_entries(job_dir: Path) -> list[tuple[dict, np.ndarray]]:
    rows = pd.read_csv(job_dir / "metrics.csv")
    entries = []
    with np.load(job_dir / FILE) as f:
        for name in f.files:
            i = int(name[1:])
            if i >= len(rows):
                raise ValueError(f"{job_dir / FILE}: {name} names row {i} but metrics.csv has {len(rows)} rows")
            key = {c: _plain(rows.iloc[i][c]) for c in KEYS}
            entries.append((key, f[name]))
    return entries


def _plain(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return None if np.isnan(v) else float(v)
    if isinstance(v, float) and np.isnan(v):
        return None
    return v


def collect(sweep_dir: Path, out_dir: Path) -> Path | None:
    """Write ``out_dir/samples.npz`` from the jobs of ``sweep_dir`` that kept samples; remove a stale
    one when none did. Returns the file written, or None."""
    entries = []
    for job_samples in sorted(Path(sweep_dir).glob(f"*/{FILE}")):
        entries += _job_entries(job_samples.parent)
    path = Path(out_dir) / FILE
    if not entries:
        path.unlink(missing_ok=True)
        return None
    width = max(len(v) for _, v in entries)
    values = np.full((len(entries), width), np.nan, dtype=np.float32)
    for j, (_, v) in enumerate(entries):
        values[j, :len(v)] = v
    atomic_write_npz(path, {"keys": np.array(json.dumps([k for k, _ in entries])),
                            "n": np.array([len(v) for _, v in entries]), "values": values})
    return path


@dataclass
class Samples:
    """The per-image values of a results folder: ``index`` (one row of identifying columns per
    entry) and ``values`` (entries x images; :meth:`of` trims an entry to its own length)."""
    index: pd.DataFrame
    values: np.ndarray
    n: np.ndarray

    def of(self, j: int) -> np.ndarray:
        return self.values[j, : int(self.n[j])].astype(float)


def read_samples(folder: Path) -> Samples | None:
    """The ``samples.npz`` of a results folder, or None when it has none."""
    path = Path(folder) / FILE
    if not path.exists():
        return None
    with np.load(path) as f:
        keys = json.loads(str(f["keys"]))
        return Samples(pd.DataFrame(keys, columns=KEYS), f["values"], f["n"])
