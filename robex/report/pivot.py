"""The one table renderer: a pivot of a sweep's ``metrics.csv`` rows, laid out by the preset.

A preset that renders a table sets ``paper.render._target_: robex.report.pivot.render_pivot`` and
describes the table in ``paper.table``; the paper's own numbers are ``paper.reported`` (one entry
per table row). Nothing about a paper is in this module::

    table:
      rows: {column: budget, reported_key: eps, header: eps1, format: g}   # one table row per
                                     # reported entry; its value filters the metrics.csv column
      labels: {gradient: SM}         # optional: printed name of a row value
      keep: attacked                 # optional: only rows whose explainer is the attacked one
      intro: "Data: {source}. ... {n[spearman]} test images."   # fields: source, models,
                                     # n[<metric>], n_all, note (from note_fn), title
      note_fn: robex.report.aggmean.data_note   # optional: rows -> text, the {note} field
      columns:                       # a list, or a mapping (presets can add to a base's)
        - header: "rank corr ATEX (paper / robex)"
          cell: "{paper:.3f} / {robex:.3f}"          # str.format template
          se: " ± {robex_se:.3f}"                    # optional, appended only when the se is known
          paper: spearman_atex                       # key of the reported entry -> {paper}
          values:                                    # name -> the metrics.csv rows it averages
            robex: {metric: spearman, where: {defense: atex, attack: manip_untargeted}}

In a cell, a missing paper value prints ``-`` and a value robex could not compute ``n/a``; each
value also gives ``{<name>_se}`` and ``{<name>_n}``. Seeds are averaged by
:func:`robex.report.tables.lookup`. ``table.csv`` has one schema for every paper: the row key,
the column header, the value's name, its metric and filters, paper, robex, se, n, and a status
(``computed``, ``missing``: no rows matched, ``unavailable``: the data or weights do not exist here).

A preset whose data cannot exist offline also names ``paper.render_unavailable:
robex.report.pivot.render_unavailable`` and ``paper.unavailable`` (the reason): the same layout is
then rendered with the reason above it and ``unavailable`` in place of every robex value.
"""
from __future__ import annotations

import importlib
import math

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from robex.errors import RobexError
from robex.report.tables import lookup, markdown_table, write_table

TIDY_COLUMNS = ["row", "column", "value", "metric", "where", "paper", "robex", "se", "n", "status"]


class _Shown:
    """A number for a template: ``-`` (paper value absent) or ``n/a`` (not computed) when missing."""

    def __init__(self, value, missing: str):
        self.value, self.missing = value, missing

    def known(self) -> bool:
        return self.value is not None and not (isinstance(self.value, float) and math.isnan(self.value))

    def __format__(self, spec: str) -> str:
        return format(self.value, spec) if self.known() else self.missing


def _function(path: str):
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _joined(values) -> str:
    return ", ".join(sorted({str(v) for v in values})) if len(values) else "n/a"


def _intro_fields(rows: pd.DataFrame, spec: DictConfig, paper: DictConfig) -> dict:
    n = {m: _joined({int(v) for v in g["n"]}) for m, g in rows.groupby("metric")} if len(rows) else {}
    fields = {"source": _joined(rows["source"].astype(str)) if len(rows) else "n/a",
              "models": _joined(rows["model"].astype(str)) if len(rows) else "n/a",
              "n": _DefaultDict(n), "n_all": _joined({int(v) for v in rows["n"]}) if len(rows) else "n/a",
              "title": paper.title, "note": ""}
    if spec.get("note_fn"):
        fields["note"] = _function(spec.note_fn)(rows)
    return fields


def _plain(node) -> dict:
    return OmegaConf.to_container(node, resolve=True) if node is not None else {}


class _DefaultDict(dict):
    def __missing__(self, key):
        return "n/a"


def render_unavailable(rows, paper: DictConfig, out_dir, arrays=None) -> pd.DataFrame:
    """The preset's table with the paper's numbers beside ``unavailable`` and the reason
    (``paper.unavailable``) above it: never a made-up value."""
    return render_pivot(None, paper, out_dir, unavailable=str(paper.unavailable))


def render_pivot(rows: pd.DataFrame | None, paper: DictConfig, out_dir, arrays=None,
                 unavailable: str | None = None) -> pd.DataFrame:
    """Write ``table.md`` (intro + the preset's table, paper beside robex) and ``table.csv``."""
    spec = paper.table
    row_spec = spec.rows
    if unavailable is not None:
        rows = pd.DataFrame(columns=["metric", "explainer", "attacked_explainer", "source", "model", "n"])
    missing = "unavailable" if unavailable is not None else "n/a"
    if spec.get("keep") == "attacked":
        rows = rows[rows["attacked_explainer"].astype(str) == rows["explainer"].astype(str)]
    elif spec.get("keep"):
        raise RobexError(f"paper.table.keep={spec.keep!r}: the only filter is 'attacked'")
    labels = _plain(spec.get("labels"))
    reported = OmegaConf.to_container(paper.reported)
    key_in_reported = row_spec.get("reported_key", row_spec.column)
    columns = list(spec.columns.values()) if isinstance(spec.columns, DictConfig) else list(spec.columns)
    tidy, body = [], []
    for rep in reported:
        key = rep[key_in_reported]
        shown_key = labels.get(key, format(key, row_spec.get("format", "")))
        cells = [shown_key]
        for col in columns:
            fields = {"paper": _Shown(rep.get(col.paper) if col.get("paper") else None, "-")}
            se_known = True
            for name, value in col["values"].items():
                where = {row_spec.column: key, **_plain(value.get("where"))}
                v, se, n = (lookup(rows, value.metric, **where) if unavailable is None
                             else (math.nan, math.nan, 0))
                fields[name], fields[f"{name}_se"], fields[f"{name}_n"] = (
                    _Shown(v, missing), _Shown(se, missing), _Shown(n, missing))
                se_known = se_known and fields[f"{name}_se"].known()
                filters = {k: w for k, w in where.items() if k != row_spec.column}
                tidy.append({"row": key, "column": col.header, "value": name, "metric": value.metric,
                             "where": " ".join(f"{k}={w}" for k, w in filters.items()),
                             "paper": rep.get(col.paper) if col.get("paper") and name == "robex" else None,
                             "robex": v, "se": se, "n": n,
                             "status": "unavailable" if unavailable is not None else ("computed" if n else "missing")})
            text = col.get("cell", "{paper:.3f} / {robex:.3f}").format(**fields)
            if col.get("se") and se_known:
                text += col.se.format(**fields)
            cells.append(text)
        body.append(cells)
    header = [row_spec.get("header", row_spec.column)] + [c.header for c in columns]
    if unavailable is not None:
        intro = f"# {paper.title}\n\n**Not reproduced here: {unavailable}**\n\nCells are paper / robex.\n\n"
    else:
        intro = spec.get("intro", "# {title}\n\n").format(**_intro_fields(rows, spec, paper))
    out = pd.DataFrame(tidy, columns=TIDY_COLUMNS)
    write_table(out_dir, "table", out, intro + markdown_table(header, body))
    return out
