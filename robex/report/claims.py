"""The claims engine: a paper's claims are data (``conf/claims/<paper>.yaml``), evaluated by this one
module on the tidy rows robex wrote (``results/<artifact>/metrics.csv``, or a figure's per-sample
``figure.csv``), with their uncertainty.

`python -m robex.report.claims <paper> [results_dir]` writes ``<results_dir>/<paper>_claims.md``.

A claim has a ``test`` and ``cells`` (one per combination of its ``for_each`` values, and per
metric). Each cell gives an estimate with a 95% confidence interval and a cell verdict:
``holds`` (the interval lies on the claimed side), ``contradicted`` (it lies on the other side),
``not distinguishable`` (it contains the boundary) or ``undefined`` (a row it needs has no defined
value: n = 0, e.g. a Spearman correlation of maps that are constant on every image; the cell names
the ``<metric>__nan`` count the job wrote). The claim is PASS when every cell holds, FAIL when any
cell is contradicted, NOT DISTINGUISHABLE otherwise (an undefined cell never lets a claim pass),
MISSING when its artifact was not produced.

Tests (``expect``: ``greater`` or ``less``):
- ``difference``: a - b (two row selections, same metric), CI a - b +/- z sqrt(se_a^2 + se_b^2),
  the two arms treated as independent. When both rows kept their per-image values
  (``samples.npz`` beside ``metrics.csv``, :mod:`robex.report.samples`) on the same number of images,
  the cell pairs them instead: the mean of the per-image differences with a paired bootstrap
  interval (:func:`paired_bootstrap`; images where either arm has no value are left out), which
  removes the between-image spread the independent interval keeps. ``growth`` and ``within``
  pair the same way (growth: the per-image double difference); the cell's label says
  "paired bootstrap over n images".
  With ``threshold`` t the boundary is t instead of 0 (e.g. a without b: "a rate stays >= 0.9").
  A rate (a mean of per-image 0 / 1 outcomes) without b may say ``interval: wilson``: its cell then
  uses the Wilson score interval of k = value x n successes in n (seeds pooled), which stays honest
  at a rate of 0 or 1, where the normal interval has width 0.
- ``growth``: along ``axis`` (budget, step, ...), (a - b) at the axis' last value minus at its first (b
  optional), CI from the four standard errors; ``points: [first, last]`` names the two values when
  the axis is not numeric or holds more (e.g. two attack settings: "a gains more than b").
- ``within``: |a - b| <= ``tolerance``: holds when the CI lies inside [-tol, tol], contradicted when
  it lies outside.
- ``share``: on ``figure.csv``, the share of samples with ``y`` below ``x`` (per ``group_by``), with
  a Wilson score interval; holds when the interval lies above ``threshold`` (``expect: greater``).
- ``paired``: on ``figure.csv`` (one line per sample, ``x`` and ``y`` measured on the same sample),
  the mean of ``y - x`` per ``group_by`` with a paired bootstrap interval (percentile, resampling
  the samples, :func:`paired_bootstrap`); compared with ``threshold`` (default 0) by ``expect``.
  Pairing removes the between-sample spread that the independent-arms ``difference`` keeps.

Standard errors come from the rows' ``se`` column (a mean of fewer than two samples has none: its
interval is unbounded and its cells NOT DISTINGUISHABLE); a row whose ``se`` is empty (accuracies over a
whole test set) uses the binomial ``sqrt(p (1 - p) / n)`` when the claim says
``se_if_missing: binomial``, and is otherwise an error. Intervals are per cell at 95%, not
corrected for the number of cells.

Seeds: when the rows of a ``difference``, ``growth`` or ``within`` cell span two or more seeds (a
``seed`` column; both arms on the same seeds), the test is computed per seed and the cell's interval
is :func:`seed_interval`: the mean over seeds, with the images' variance plus the between-seed
variance / m, and a Student t quantile (Welch-Satterthwaite degrees of freedom, between m - 1 and
infinity); the cell's label says how many seeds. With samples on every seed, each seed's estimate
and image variance come from its paired differences (variance / n) and the label says "paired". A single seed uses the normal interval above. (:func:`estimate` on its own, and the Wilson rate
cells, pool rows that differ only by seed.)
"""
from __future__ import annotations

import itertools
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from robex.errors import RobexError
from robex.report.samples import read_samples
from robex.report.schema import read_metrics
from robex.report.tables import markdown_table, seed_variance
from robex.utils import atomic_write_text

CLAIMS_DIR = Path(__file__).resolve().parents[2] / "conf" / "claims"
Z = 1.959964  # two-sided 95%
TESTS = ("difference", "growth", "within", "share", "paired")
BOOTSTRAP_RESAMPLES = 4000
BOOTSTRAP_SEED = 0
VERDICTS = ("PASS", "FAIL", "NOT DISTINGUISHABLE", "MISSING")


@dataclass
class Cell:
    label: str
    estimate: float
    low: float
    high: float
    verdict: str  # holds / contradicted / not distinguishable / undefined
    why: str = ""  # for an undefined cell: which row has no defined value, and the NaN count

    def text(self, fmt: str) -> str:
        if self.verdict == "undefined":
            return f"{self.label}: undefined ({self.why})"
        return (f"{self.label}: {self.estimate:{fmt}} [{self.low:{fmt}}, {self.high:{fmt}}] "
                f"{self.verdict}")


class Undefined(Exception):
    """A selected row has no defined value (n = 0): its cell gets no estimate and no interval."""


@dataclass
class ClaimResult:
    text: str
    verdict: str
    cells: list[Cell]
    note: str = ""


# -- selections ------------------------------------------------------------------------------------
def _match(rows: pd.DataFrame, where: dict) -> pd.DataFrame:
    sel = rows
    for col, want in where.items():
        if col not in sel.columns:
            raise RobexError(f"claims: column {col!r} is not in the rows (columns: {list(sel.columns)})")
        if isinstance(want, (list, tuple)) or OmegaConf.is_list(want):
            sel = sel[sel[col].astype(str).isin([str(w) for w in want])]
        elif isinstance(want, float) or (isinstance(want, int) and not isinstance(want, bool)):
            sel = sel[(pd.to_numeric(sel[col], errors="coerce") - float(want)).abs() <= 1e-9]
        else:
            sel = sel[sel[col].astype(str) == str(want)]
    return sel


def _fill(where: dict, env: dict) -> dict:
    return {k: (v.format(**env) if isinstance(v, str) else v) for k, v in (where or {}).items()}


def estimate(rows: pd.DataFrame, where: dict, se_if_missing: str | None) -> tuple[float, float]:
    """(value, se) of the one row a selection names (rows that differ only by seed are averaged)."""
    sel = _match(rows, where)
    if sel.empty:
        raise RobexError(f"claims: no row matches {where}")
    if "seed" in sel.columns and len(sel) > sel["seed"].nunique():
        raise RobexError(f"claims: {where} matches {len(sel)} rows that differ by more than the seed; "
                         f"narrow the selection")
    values = pd.to_numeric(sel["value"], errors="coerce")
    if values.isna().all():
        raise Undefined(_undefined_reason(rows, where, sel))
    ses = []
    for _, r in sel.iterrows():
        se = r.get("se")
        if (se is None or pd.isna(se)) and se_if_missing != "binomial" and float(r.get("n", 0) or 0) < 2:
            se = math.inf  # a mean of fewer than two samples: no interval, so never a verdict
        if se is None or pd.isna(se):
            if se_if_missing != "binomial":
                raise RobexError(f"claims: the row {where} has no standard error; set "
                                 f"se_if_missing: binomial if it is a proportion")
            p, n = float(r["value"]), float(r["n"])
            if not n > 0:
                raise RobexError(f"claims: the row {where} has neither se nor n")
            se = math.sqrt(max(p * (1 - p), 0.0) / n)
        ses.append(float(se))
    m = len(sel)
    return float(sel["value"].astype(float).mean()), math.sqrt(sum(s * s for s in ses)) / m


def _undefined_reason(rows: pd.DataFrame, where: dict, sel: pd.DataFrame) -> str:
    """Why a selection has no value: the job's ``<metric>__nan`` count when it wrote one."""
    what = ", ".join(f"{k} {_show(v)}" for k, v in where.items() if k != "metric")
    metric = where.get("metric")
    nan_rows = _match(rows, where | {"metric": f"{metric}__nan"}) if metric is not None else rows.iloc[:0]
    if not nan_rows.empty:
        k, n = float(nan_rows["value"].astype(float).sum()), float(nan_rows["n"].astype(float).sum())
        return f"{metric} has no defined value for {what}: NaN on {k:g} of {n:g} samples"
    return f"{metric} has no defined value for {what} (n = {_show(float(sel['n'].astype(float).sum()))})"


def _show(v) -> str:
    return f"{v:g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)


def _side(low: float, high: float, expect: str, boundary: float = 0.0) -> str:
    if expect not in ("greater", "less"):
        raise RobexError(f"claims: expect={expect!r}: choose 'greater' or 'less'")
    if (low > boundary) if expect == "greater" else (high < boundary):
        return "holds"
    if (high < boundary) if expect == "greater" else (low > boundary):
        return "contradicted"
    return "not distinguishable"


def wilson(k: int, n: int, z: float = Z) -> tuple[float, float]:
    """Wilson score interval of a proportion k / n."""
    if n <= 0:
        return float("nan"), float("nan")
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def paired_bootstrap(diffs, level: float = 0.95, resamples: int = BOOTSTRAP_RESAMPLES,
                     seed: int = BOOTSTRAP_SEED) -> tuple[float, float, float]:
    """(mean, low, high): the mean of per-sample paired differences and its percentile bootstrap
    interval (the samples resampled with replacement ``resamples`` times; seeded, so a report is
    reproducible). Fewer than two samples give an unbounded interval."""
    d = np.asarray(diffs, dtype=float)
    d = d[np.isfinite(d)]
    if len(d) == 0:
        return float("nan"), float("nan"), float("nan")
    if len(d) < 2:
        return float(d.mean()), -math.inf, math.inf
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    step = max(1, 4_000_000 // len(d))  # bounded memory: draw the resamples in chunks
    for start in range(0, resamples, step):
        stop = min(resamples, start + step)
        means[start:stop] = d[rng.integers(0, len(d), size=(stop - start, len(d)))].mean(1)
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(d.mean()), float(low), float(high)


# -- tests -----------------------------------------------------------------------------------------
def _cells_from_rows(claim, rows: pd.DataFrame, samples=None) -> list[Cell]:
    metrics = list(claim.metric) if OmegaConf.is_list(claim.metric) else [claim.metric]
    axes = dict(claim.get("for_each") or {})
    values = {}
    for ax, listed in axes.items():
        if listed is None:
            if ax not in rows.columns:
                raise RobexError(f"claims: for_each axis {ax!r} is not a column")
            listed = sorted(rows[ax].dropna().unique().tolist())
        values[ax] = list(listed)
    se_mode = claim.get("se_if_missing")
    cells = []
    for metric in metrics:
        for combo in itertools.product(*values.values()) if values else [()]:
            env = dict(zip(values.keys(), combo))
            fixed = {ax: v for ax, v in env.items() if ax in rows.columns}  # a / b may override
            base = {"metric": metric}
            a = base | fixed | _fill(claim.a, env)
            b = (base | fixed | _fill(claim.b, env)) if claim.get("b") else None
            label = ", ".join([str(metric)] + [f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}"
                                               for k, v in env.items()])
            try:
                cells.append(_cell(claim, rows, a, b, label, se_mode, samples))
            except Undefined as why:
                nan = float("nan")
                cells.append(Cell(label, nan, nan, nan, "undefined", str(why)))
    return cells


def _seeds(rows: pd.DataFrame, a: dict, b: dict | None) -> list:
    """The seeds the selections a (and b) span; a and b must span the same ones."""
    if "seed" not in rows.columns:
        return []
    found = [sorted(_match(rows, sel)["seed"].dropna().unique().tolist())
             for sel in (a, b) if sel is not None]
    if len(found) == 2 and found[0] != found[1]:
        raise RobexError(f"claims: {a} has seeds {found[0]} but {b} has seeds {found[1]}; "
                         f"a seed-level comparison needs both arms on the same seeds")
    return found[0]


def _one_seed_estimate(claim, rows, a: dict, b: dict | None, se_mode, samples=None):
    """(estimate, variance, label suffix, paired differences) of a test on one seed's rows (or seeds
    averaged): the estimate and variance from the rows (independent arms), and the per-image paired
    differences (:func:`_paired_differences`), None unless the rows' samples allow pairing."""
    terms = [(a, 1.0)] + ([(b, -1.0)] if b else [])
    suffix = ""
    if claim.test == "growth":
        axis = claim.axis
        points = list(claim.points) if claim.get("points") is not None else \
            sorted(_match(rows, {k: v for k, v in a.items() if k != axis})[axis].dropna().unique())
        if len(points) < 2:
            raise RobexError(f"claims: growth along {axis} needs two values; found {points}")
        first, last = points[0], points[-1]
        terms = [(sel | {axis: point}, sign * w) for point, w in ((last, 1.0), (first, -1.0)) for sel, sign in terms]
        suffix = f", {axis} {_show(last)} vs {_show(first)}"
    est = var = 0.0
    for sel, w in terms:
        v, se = estimate(rows, sel, se_mode)
        est, var = est + w * v, var + se * se
    seed = rows["seed"].dropna().unique() if "seed" in rows.columns else []
    d = _paired_differences(samples, terms, seed[0] if len(seed) == 1 else None) if len(terms) > 1 else None
    return est, var, suffix, d


def _paired_differences(samples, terms, seed) -> np.ndarray | None:
    """Per image, the signed sum of the terms' values (a - b, or the growth's double difference)
    when every term's row kept its per-image values (:mod:`robex.report.samples`) on the same number
    of images; images where a term has no value are left out. None when pairing is not possible
    (no samples, a row without them, or different numbers of images)."""
    if samples is None:
        return None
    total = None
    for sel, w in terms:
        where = sel | ({"seed": seed} if seed is not None else {})
        hit = _match(samples.index, {k: v for k, v in where.items() if k in samples.index.columns})
        if len(hit) != 1:
            return None
        v = samples.of(int(hit.index[0]))
        if total is not None and len(v) != len(total):
            return None
        total = w * v if total is None else total + w * v
    d = total[np.isfinite(total)]
    return d if len(d) >= 2 else None


def seed_interval(estimates, variances, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high) over m >= 2 seeds that share their test images. The mean of the per-seed
    estimates has variance a + b: a = the mean per-seed image variance (it does not shrink with m:
    every seed sees the same images), b = the between-seed sample variance / m (what training
    randomness adds). The quantile is Student's t with the Welch-Satterthwaite degrees of freedom
    (a + b)^2 / (b^2 / (m - 1)), a taken as known (it comes from hundreds of images): t with m - 1
    df when the seeds' spread dominates, the normal quantile when the images' does."""
    from scipy.stats import t as student_t

    e, v = np.asarray(estimates, dtype=float), np.asarray(variances, dtype=float)
    m = len(e)
    if m < 2:
        raise ValueError("seed_interval needs at least two seeds")
    a, b = seed_variance(e, v)
    df = (a + b) ** 2 / (b * b / (m - 1)) if b > 0 else math.inf
    q = float(student_t.ppf(0.5 + level / 2, df)) if math.isfinite(df) else Z
    half = q * math.sqrt(a + b)
    return float(e.mean()), float(e.mean()) - half, float(e.mean()) + half


def _cell(claim, rows, a: dict, b: dict | None, label: str, se_mode, samples=None) -> Cell:
    test, expect = claim.test, claim.get("expect", "greater")
    if claim.get("interval") == "wilson":
        if test != "difference" or b:
            raise RobexError("claims: interval: wilson is for one rate against a threshold (test: difference, no b)")
        return _rate_cell(claim, rows, a, label, expect)
    if claim.get("interval") not in (None, "normal"):
        raise RobexError(f"claims: interval={claim.interval!r}: choose normal (the default) or wilson")
    seeds = _seeds(rows, a, b)
    if len(seeds) >= 2:  # seed-level uncertainty: per-seed estimates, their spread added
        per = [_one_seed_estimate(claim, rows[rows["seed"] == s], a, b, se_mode, samples) for s in seeds]
        paired = all(p[3] is not None for p in per)  # pair on every seed or on none
        ests = [(float(p[3].mean()), float(p[3].var(ddof=1)) / len(p[3])) if paired else p[:2] for p in per]
        est, low, high = seed_interval([e for e, _ in ests], [v for _, v in ests])
        label = f"{label}{per[0][2]}, {len(seeds)} seeds" + (f", paired over {len(per[0][3])} images" if paired else "")
    else:
        est, var, suffix, d = _one_seed_estimate(claim, rows, a, b, se_mode, samples)
        if d is not None:  # the same images under both arms: paired bootstrap over images
            est, low, high = paired_bootstrap(d)
            suffix += f", paired bootstrap over {len(d)} images"
        else:
            half = Z * math.sqrt(var)
            low, high = est - half, est + half
        label += suffix
    if test == "within":
        tol = float(claim.tolerance)
        verdict = ("holds" if -tol <= low and high <= tol else
                   "contradicted" if low > tol or high < -tol else "not distinguishable")
    else:
        verdict = _side(low, high, expect, float(claim.get("threshold", 0.0)))
    return Cell(label, est, low, high, verdict)


def _rate_cell(claim, rows, a: dict, label: str, expect: str) -> Cell:
    """A rate against its threshold with a Wilson interval: k = round(value x n) per row, seeds pooled."""
    sel = _match(rows, a)
    if sel.empty:
        raise RobexError(f"claims: no row matches {a}")
    if "seed" in sel.columns and len(sel) > sel["seed"].nunique():
        raise RobexError(f"claims: {a} matches {len(sel)} rows that differ by more than the seed; narrow the selection")
    values, ns = sel["value"].astype(float), sel["n"].astype(float)
    if values.isna().all():
        raise Undefined(_undefined_reason(rows, a, sel))
    if not ((values >= 0) & (values <= 1)).all() or not (ns > 0).all():
        raise RobexError(f"claims: interval: wilson needs rates in [0, 1] with n > 0; {a} has "
                         f"values {values.tolist()} and n {ns.tolist()}")
    k, n = int(round(float((values * ns).sum()))), int(ns.sum())
    low, high = wilson(k, n)
    return Cell(label, k / n, low, high, _side(low, high, expect, float(claim.get("threshold", 0.0))))


def _sample_groups(claim, rows: pd.DataFrame):
    """(label, samples) per ``group_by`` value of the per-sample rows the claim's ``where`` selects."""
    sel = _match(rows, dict(claim.get("where") or {}))
    groups = list(claim.get("group_by") or [])
    found = [(" / ".join(str(v) for v in (key if isinstance(key, tuple) else (key,))) or "all", g)
             for key, g in (sel.groupby(groups) if groups else [((), sel)])]
    if not found:
        raise RobexError(f"claims: no samples match {dict(claim.get('where') or {})}")
    return found


def _share_cells(claim, rows: pd.DataFrame) -> list[Cell]:
    threshold = float(claim.get("threshold", 0.5))
    cells = []
    for label, g in _sample_groups(claim, rows):
        k, n = int((g[claim.y] < g[claim.x]).sum()), int(len(g))
        low, high = wilson(k, n)
        cells.append(Cell(f"{label} (n={n})", k / n if n else float("nan"), low, high,
                          _side(low, high, claim.get("expect", "greater"), threshold)))
    return cells


def _paired_cells(claim, rows: pd.DataFrame) -> list[Cell]:
    threshold = float(claim.get("threshold", 0.0))
    cells = []
    for group, g in _sample_groups(claim, rows):
        diffs = (pd.to_numeric(g[claim.y], errors="coerce") - pd.to_numeric(g[claim.x], errors="coerce")).to_numpy()
        n = int(np.isfinite(diffs).sum())
        label = f"{group}: mean {claim.y} - {claim.x} (n={n})"
        if n == 0:
            nan = float("nan")
            cells.append(Cell(label, nan, nan, nan, "undefined", f"no finite pair of {claim.x}, {claim.y}"))
            continue
        est, low, high = paired_bootstrap(diffs)
        cells.append(Cell(label, est, low, high, _side(low, high, claim.get("expect", "greater"), threshold)))
    return cells


def evaluate_claim(claim, results: Path) -> ClaimResult:
    if claim.test not in TESTS:
        raise RobexError(f"claims: test={claim.test!r}: choose one of {TESTS}")
    source = claim.get("source", "metrics.csv")
    path = results / claim.artifact / source
    if not path.exists():
        return ClaimResult(claim.text, "MISSING", [], f"{claim.artifact}/{source} not found")
    rows = read_metrics([path]) if source == "metrics.csv" else pd.read_csv(path)
    by_sample = {"share": _share_cells, "paired": _paired_cells}
    if claim.test in by_sample:
        cells = by_sample[claim.test](claim, rows)
    else:
        cells = _cells_from_rows(claim, rows, read_samples(path.parent) if source == "metrics.csv" else None)
    verdicts = {c.verdict for c in cells}
    verdict = ("PASS" if verdicts == {"holds"} else "FAIL" if "contradicted" in verdicts
               else "NOT DISTINGUISHABLE")
    return ClaimResult(claim.text, verdict, cells, claim.get("note", ""))


def load_claims(paper: str):
    path = CLAIMS_DIR / f"{paper}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in CLAIMS_DIR.glob("*.yaml"))
        raise RobexError(f"no claims file {path} (papers with claims: {', '.join(known)})")
    return OmegaConf.load(path)


def counts(evaluated: list[ClaimResult]) -> dict[str, int]:
    return {v: sum(r.verdict == v for r in evaluated) for v in VERDICTS}


def render(spec, evaluated: list[ClaimResult]) -> str:
    lines = [f"# {spec.title}", "", str(spec.intro).strip(), "",
             "How to read it: every cell is an estimate with its 95% confidence interval; a claim "
             "PASSes only when every cell's interval lies on the claimed side, FAILs when one lies on "
             "the other side, and is NOT DISTINGUISHABLE when an interval contains the boundary or a cell is "
             "undefined (a metric with no defined value there, e.g. a correlation of constant maps). "
             "The criteria are in `conf/claims/" + f"{spec.paper}.yaml` and in `robex/report/claims.py`.",
             ""]
    body = []
    for r in evaluated:
        cells = "; ".join(c.text(".3g") for c in r.cells) or r.note
        note = f" ({r.note})" if r.note and r.cells else ""
        body.append([f"{r.text}{note}", r.verdict, cells])
    table = markdown_table(["claim", "verdict", "estimates [95% CI]"], body)
    return "\n".join(lines) + "\n" + table + "\n" + ", ".join(f"{n} {v}" for v, n in counts(evaluated).items()) + ".\n"


def write_report(paper: str, results: Path) -> dict[str, int]:
    spec = load_claims(paper)
    evaluated = [evaluate_claim(c, results) for c in spec.claims]
    path = results / f"{paper}_claims.md"
    atomic_write_text(path, render(spec, evaluated))
    tally = counts(evaluated)
    print(f"claims: {tally} -> {path}")
    return tally


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m robex.report.claims <paper> [results_dir]", file=sys.stderr)
        return 2
    try:
        write_report(argv[0], Path(argv[1]) if len(argv) > 1 else Path("results"))
    except RobexError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
