"""The one renderer for figures drawn from ``metrics.csv`` rows (bars and lines), laid out by the
preset, as :mod:`robex.report.pivot` is for tables. Figures drawn from per-sample arrays (image
galleries, per-sample scatters) stay special renderers beside the paper's module.

A preset sets ``paper.render._target_: robex.report.plot.render_plot`` and describes the figure in
``paper.plot``::

    plot:
      kind: bar                      # bar (grouped bars) or line
      metric: ssim_to_smoothgrad     # the metrics.csv metric plotted (a list: set series or facet
                                     # to `metric`, one line / panel per metric)
      x: dataset                     # the column on the x axis (categories for bars, numbers for lines)
      series: step                   # optional: one bar group member / one line per value (a list of
                                     # columns: one per combination, labels keyed "a / b")
      series_labels: {"0": baseline, default: "ATEX k={value}"}   # optional; fields: {value} (the
                                     # series value) and the series' row columns ({attack}, {budget}, ...);
                                     # series named here are drawn first, in this order
      facet: dataset                 # optional: one panel per value
      x_labels: {mnist5k: "mnist5k\\n(subset)"}   # optional: printed name of an x value (bars)
      facet_labels: {mnist5k: "mnist5k (subset)"}  # optional: printed name of a panel
      x_tick_column: metric_params   # optional: tick labels of a line plot from this column's values
      x_tick_strip: "layer="         # optional: a prefix removed from those labels
      xlabel: ..., ylabel: ...       # axis labels (default: the column / metric)
      legend: below                  # optional: one legend under the panels (default: one per panel)
      sharey: false                  # optional: each panel its own y range (default: one range for all)
      xscale: log                    # optional (lines): a log x axis, ticks at the x values (eps
                                     # sweeps spanning 0.07 to 8)
      error: se                      # optional: error bars of +- se where it is known, or sd: +- the
                                     # standard deviation over samples (se x sqrt(n), the papers' bars)
      same: [explainer, attacked_explainer]   # optional: only rows where these columns agree (an
                                     # attack scored on the explainer it fooled, not its transfers)

A metric that could not be computed (a ``<metric>_unavailable`` row, e.g. LPIPS without its
weights) is named with its reason under the figure, so an absent panel is never silent. Rows from an
offline stand-in (``source`` says STAND-IN) name it in the title when the preset's title does not.

Seeds are averaged by :func:`robex.report.tables.lookup` (error bars: its seed-level se). ``figure.csv`` holds exactly the plotted
values, one schema for every row figure: facet, series, x, metric, value, se, n, source.
"""
from __future__ import annotations

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from robex.errors import RobexError
from robex.report.figures import save_figure, stand_in_title, subplots
from robex.report.tables import lookup

FIGURE_COLUMNS = ["facet", "series", "x", "metric", "value", "se", "n", "source"]
KINDS = ("bar", "line")


def _ordered(values: list, labels) -> list:
    """Values named in ``labels`` first, in the labels' order (the legend's order), then the rest."""
    keys = [str(k) for k in (labels or {}) if str(k) != "default"]
    return sorted(values, key=lambda v: keys.index(_key(v)) if _key(v) in keys else len(keys))


def _values(rows: pd.DataFrame, column: str | None) -> list:
    """The column's distinct values in a stable order (numbers ascending, else first seen)."""
    if not column:
        return [None]
    vals = list(dict.fromkeys(rows[column].tolist()))
    try:
        return sorted(vals, key=float)
    except (TypeError, ValueError):
        return vals


def _plain(node) -> dict:
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else dict(node or {})


def _key(value) -> str:
    """A value as a label key: integral floats without the '.0' (step 5.0 -> '5')."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _label(template_map: dict, value, fields: dict) -> str:
    text = template_map.get(_key(value), template_map.get("default", "{value}"))
    return str(text).format(**{**fields, "value": _key(value)})


def _fields(rows: pd.DataFrame) -> dict:
    """Row columns usable in label templates: each column's values joined (``budget`` as %g)."""
    out = {}
    for col in rows.columns:
        vals = sorted({format(v, "g") if isinstance(v, float) else str(v) for v in rows[col].dropna()})
        out[col] = ", ".join(vals)
    return out


def _metrics(spec) -> list[str]:
    """The plotted metric(s): ``metric`` is one name, or a list when ``series`` or ``facet`` is
    ``metric`` (e.g. two retrieval rates as two lines)."""
    metric = spec.metric
    names = [str(m) for m in metric] if isinstance(metric, (list, tuple)) or OmegaConf.is_list(metric) else [str(metric)]
    grouped = [c for key in ("series", "facet") for c in
               ([spec.get(key)] if isinstance(spec.get(key), (str, type(None))) else list(spec.get(key)))]
    if len(names) > 1 and "metric" not in grouped:
        raise RobexError("paper.plot.metric lists several metrics: set series or facet to 'metric'")
    return names


def _grouping(rows: pd.DataFrame, spec, key: str) -> tuple[pd.DataFrame, str | None]:
    """The column ``spec[key]`` names (series / facet); a list of columns becomes one combined
    column whose values join theirs with ' / ' (e.g. series: [explainer, metric])."""
    cols = spec.get(key)
    if not cols or isinstance(cols, str):
        return rows, cols or None
    cols = [str(c) for c in cols]
    name = " / ".join(cols)
    return rows.assign(**{name: rows[cols].astype(str).agg(" / ".join, axis=1)}), name


def _error_bars(line: pd.DataFrame, kind):
    """+- se, +- sd (= se sqrt(n)) or none."""
    if not kind or not line["se"].notna().any():
        return None
    if kind == "se":
        return line["se"]
    if kind == "sd":
        return line["se"] * line["n"].astype(float) ** 0.5
    raise RobexError(f"paper.plot.error={kind!r}: choose se or sd")


def unavailable_notes(rows: pd.DataFrame) -> list[str]:
    """'<metric> unavailable: <reason>' for every ``<metric>_unavailable`` row (one line per reason)."""
    sel = rows[rows["metric"].astype(str).str.endswith("_unavailable")]
    if sel.empty:
        return []
    if "metric_params" not in sel.columns:
        raise RobexError("rows with an '<metric>_unavailable' metric must carry its reason in metric_params")
    notes = []
    for metric, params in sel[["metric", "metric_params"]].drop_duplicates().itertuples(index=False):
        reason = str(params).removeprefix("reason=")
        notes.append(f"{str(metric).removesuffix('_unavailable').upper()} unavailable: {reason}")
    return list(dict.fromkeys(notes))


def _restrict(rows: pd.DataFrame, spec) -> pd.DataFrame:
    """The rows the figure draws from: all, or (``same: [a, b]``) those whose columns a and b agree."""
    same = spec.get("same")
    if not same:
        return rows
    cols = [str(c) for c in same]
    missing = [c for c in cols if c not in rows.columns]
    if len(cols) != 2 or missing:
        raise RobexError(f"paper.plot.same={cols}: name two columns of the rows (missing: {missing})")
    return rows[rows[cols[0]].astype(str) == rows[cols[1]].astype(str)]


def plotted_values(rows: pd.DataFrame, spec) -> pd.DataFrame:
    """The tidy frame of the plotted points (one per facet x series x x), seeds averaged."""
    return _plotted(_restrict(rows, spec), spec)


def _plotted(rows: pd.DataFrame, spec) -> pd.DataFrame:
    metrics = _metrics(spec)
    sel = rows[rows["metric"].isin(metrics)]
    sel, facet_col = _grouping(sel, spec, "facet")
    sel, series_col = _grouping(sel, spec, "series")
    records = []
    for facet in _values(sel, facet_col):
        in_facet = sel if facet is None else sel[sel[facet_col].astype(str) == str(facet)]
        for series in _ordered(_values(in_facet, series_col), spec.get("series_labels")):
            in_series = in_facet if series is None else in_facet[in_facet[series_col].astype(str) == str(series)]
            for x in _values(in_series, spec.x):
                where = {spec.x: x}
                if facet is not None:
                    where[facet_col] = facet
                if series is not None:
                    where[series_col] = series
                where.pop("metric", None)
                point = in_series[in_series[spec.x].astype(str) == str(x)]
                metric = str(point["metric"].iloc[0]) if len(set(point["metric"])) == 1 else metrics[0]
                v, se, n = lookup(sel, metric, **where)
                at = in_series[in_series[spec.x].astype(str) == str(x)]
                records.append({"facet": facet, "series": series, "x": x, "metric": metric,
                                "value": v, "se": se, "n": n,
                                "source": ", ".join(sorted(set(at["source"].astype(str))))})
    return pd.DataFrame(records, columns=FIGURE_COLUMNS)


def render_plot(rows: pd.DataFrame, paper: DictConfig, out_dir, arrays=None) -> pd.DataFrame:
    """Write ``figure.png`` and ``figure.csv`` (the plotted values) for the preset's ``paper.plot``."""
    spec = paper.plot
    if spec.get("kind", "line") not in KINDS:
        raise RobexError(f"paper.plot.kind={spec.kind!r}: choose one of {', '.join(KINDS)}")
    rows = _restrict(rows, spec)
    plotted = _plotted(rows, spec)
    sel = rows[rows["metric"].isin(_metrics(spec))]
    sel, facet_col = _grouping(sel, spec, "facet")
    sel, series_col = _grouping(sel, spec, "series")
    series_labels = _plain(spec.get("series_labels"))
    x_labels = _plain(spec.get("x_labels"))
    legend = spec.get("legend", "inside")
    if legend not in ("inside", "below"):
        raise RobexError(f"paper.plot.legend={legend!r}: choose inside or below")
    facet_labels = _plain(spec.get("facet_labels"))
    facets = list(dict.fromkeys(plotted["facet"].tolist())) or [None]
    # panels compare one metric (or one set of metrics): one y range for all, unless the preset says not
    fig, axes = subplots(len(facets), width=float(spec.get("width", 4.0)), sharey=bool(spec.get("sharey", True)))
    colors = ["tab:gray", "tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink",
              "tab:olive", "tab:cyan"]
    for ax, facet in zip(axes, facets):
        part = plotted[plotted["facet"].astype(str) == str(facet)] if facet is not None else plotted
        facet_rows = sel if facet is None else sel[sel[facet_col].astype(str) == str(facet)]
        series_values = list(dict.fromkeys(part["series"].tolist()))
        xs_all = list(dict.fromkeys(part["x"].tolist()))
        width = 0.8 / max(1, len(series_values))
        for j, series in enumerate(series_values):
            line = part[part["series"].astype(str) == str(series)] if series is not None else part
            srows = facet_rows if series is None else facet_rows[facet_rows[series_col].astype(str) == str(series)]
            label = _label(series_labels, series, _fields(srows)) if (series is not None or series_labels) else None
            err = _error_bars(line, spec.get("error"))
            color = colors[j % len(colors)]
            if spec.get("kind", "line") == "bar":
                pos = [xs_all.index(x) + (j - (len(series_values) - 1) / 2) * width for x in line["x"]]
                ax.bar(pos, line["value"], width, yerr=err, color=color, label=label)
            else:
                ax.errorbar(line["x"].astype(float), line["value"], yerr=err, fmt="o-", color=color, label=label)
        if spec.get("kind", "line") == "bar":
            ax.set_xticks(range(len(xs_all)), [str(x_labels.get(_key(x), x)) for x in xs_all])
        elif spec.get("x_tick_column"):
            ticks = {}
            for x in xs_all:
                at = facet_rows[facet_rows[spec.x].astype(str) == str(x)][spec.x_tick_column].astype(str)
                ticks[x] = at.iloc[0].removeprefix(str(spec.get("x_tick_strip", ""))) if len(at) else str(x)
            ax.set_xticks([float(x) for x in xs_all], [ticks[x] for x in xs_all], rotation=60, fontsize=7)
        if spec.get("xscale") is not None:
            if spec.xscale != "log" or spec.get("kind", "line") != "line":
                raise RobexError(f"paper.plot.xscale={spec.xscale!r}: only 'log', for line plots")
            xs = sorted(float(x) for x in xs_all)
            if xs and xs[0] <= 0:
                raise RobexError(f"paper.plot.xscale=log needs positive x values; got {xs[0]}")
            ax.set_xscale("log")
            ax.set_xticks(xs, [f"{x:.3g}" for x in xs], fontsize=7)
            ax.minorticks_off()
        ax.set_xlabel(spec.get("xlabel", spec.x))
        ax.set_ylabel(spec.get("ylabel", ", ".join(_metrics(spec))))
        if facet is not None:
            ax.set_title(str(facet_labels.get(_key(facet), facet)), fontsize=9)
        if ax.get_legend_handles_labels()[1] and legend != "below":
            ax.legend(fontsize=8)
    fig.suptitle(stand_in_title(str(paper.title), rows), fontsize=9)
    below = 0.0  # inches taken under the panels by the shared legend
    handles, labels = axes[0].get_legend_handles_labels()
    if legend == "below" and labels:
        ncol = min(3, len(labels))
        fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=ncol, fontsize=8,
                   frameon=False)
        below = 0.25 * -(-len(labels) // ncol) + 0.1
    notes = unavailable_notes(rows)
    if notes:
        height = fig.get_size_inches()[1]
        fig.text(0.01, 0.005 - below / height, "\n".join(notes), fontsize=7, va="top" if below else "bottom",
                 ha="left", color="tab:red")
    save_figure(fig, out_dir, plotted)
    return plotted
