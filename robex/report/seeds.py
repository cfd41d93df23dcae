"""A defense's gain over its baseline, seed by seed (ATEX Tables 1-2 over seeds: conf/paper/atex_seeds.yaml).

The table gives, per attack, eps and metric, each seed's baseline and defended values and their gain,
then the gain's mean over the seeds with the claims engine's seed-level 95% interval
(:func:`robex.report.claims.seed_interval`), beside the paper's gain (read from the table preset
that ``paper.reported_from`` names, never copied). The figure draws each seed's gain against eps and
the paper's.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from robex.errors import RobexError
from robex.report.claims import seed_interval
from robex.report.figures import plt, save_figure, stand_in_title
from robex.report.tables import fmt, markdown_table, write_table

PRESETS = Path(__file__).resolve().parents[2] / "conf" / "paper"


def paper_gains(preset: str, metric: str) -> dict[float, float]:
    """eps -> the paper's defended-minus-baseline value of ``metric``, from a table preset's
    ``paper.reported`` (keys ``<metric>_atex`` and ``<metric>_baseline``)."""
    reported = OmegaConf.load(PRESETS / f"{preset}.yaml").paper.reported
    return {float(r.eps): float(r[f"{metric}_atex"]) - float(r[f"{metric}_baseline"]) for r in reported}


def seed_gains(rows: pd.DataFrame, attack: str, metric: str, defense: str, baseline: str) -> pd.DataFrame:
    """One line per (budget, seed): baseline and defended value, their se, and the gain."""
    sel = rows[(rows["attack"] == attack) & (rows["metric"] == metric)]
    out = []
    for (budget, seed), g in sel.groupby(["budget", "seed"]):
        arms = {}
        for arm in (defense, baseline):
            r = g[g["defense"] == arm]
            if len(r) != 1:
                raise RobexError(f"seeds: {len(r)} rows for {attack} {metric} eps {budget} seed {seed} "
                                 f"defense {arm}; expected one")
            arms[arm] = r.iloc[0]
        d, b = arms[defense], arms[baseline]
        out.append({"attack": attack, "metric": metric, "budget": float(budget), "seed": int(seed),
                    "baseline": float(b["value"]), "defended": float(d["value"]),
                    "gain": float(d["value"]) - float(b["value"]),
                    "gain_var": float(d["se"]) ** 2 + float(b["se"]) ** 2})
    return pd.DataFrame(out)


def render_seeds(rows: pd.DataFrame, paper: DictConfig, out_dir, arrays=None) -> None:
    out_dir = Path(out_dir)
    defense, baseline = paper.get("defense", "atex"), paper.get("baseline", "none")
    per_seed, summary = [], []
    for attack in paper.attacks:
        preset = paper.reported_from[attack]
        for metric in paper.metrics:
            g = seed_gains(rows, attack, metric, defense, baseline)
            if g.empty:
                continue
            per_seed.append(g)
            ref = paper_gains(preset, metric)
            for budget, b in g.groupby("budget"):
                if len(b) >= 2:
                    mean, low, high = seed_interval(b["gain"], b["gain_var"])
                else:
                    mean, low, high = float(b["gain"].iloc[0]), float("nan"), float("nan")
                summary.append({"attack": attack, "metric": metric, "budget": budget, "seeds": len(b),
                                "gain_mean": mean, "gain_low": low, "gain_high": high,
                                "paper_gain": ref.get(float(budget), float("nan"))})
    if not per_seed:
        raise RobexError("seeds: no rows of the preset's attacks and metrics to render")
    per_seed, summary = pd.concat(per_seed, ignore_index=True), pd.DataFrame(summary)
    seeds = sorted(per_seed["seed"].unique())
    per_seed_n = rows.loc[rows["metric"] == paper.metrics[0], "n"].max()  # images attacked (accuracy: the test set)
    source = "; ".join(sorted(rows["source"].dropna().astype(str).unique())) if "source" in rows else ""
    body = []
    for _, s in summary.iterrows():
        b = per_seed[(per_seed.attack == s.attack) & (per_seed.metric == s.metric) & (per_seed.budget == s.budget)]
        by_seed = "; ".join(f"{int(r.seed)}: {r.baseline:.3f} -> {r.defended:.3f} ({r.gain:+.3f})"
                            for r in b.itertuples())
        body.append([s.attack, s.metric, f"{s.budget:g}", by_seed,
                     f"{s.gain_mean:+.3f} [{fmt(s.gain_low)}, {fmt(s.gain_high)}]", f"{s.paper_gain:+.3f}"])
    md = (f"# {paper.title}\n\nData: {source}. Seeds {', '.join(str(s) for s in seeds)}; a seed changes the "
          f"train/val split, the baseline's training and ATEX's noise; the attacked images (the first "
          f"{int(per_seed_n)} test images) are the same for every seed. "
          f"Gain = {defense} minus baseline `{baseline}`; the interval is the claims engine's seed-level 95% "
          f"interval (image variance + between-seed variance / m, Welch-Satterthwaite t). The paper's gain is "
          f"its Table's ATEX minus baseline, one model.\n\n"
          + markdown_table(["attack", "metric", "eps1", "seed: baseline -> ATEX (gain)",
                            "gain, mean over seeds [95% CI]", "paper's gain"], body))
    write_table(out_dir, "table", summary, md)
    _figure(per_seed, summary, paper, rows, out_dir)


def _figure(per_seed: pd.DataFrame, summary: pd.DataFrame, paper: DictConfig, rows, out_dir: Path) -> None:
    metrics, attacks = list(paper.metrics), list(paper.attacks)
    fig, axes = plt.subplots(len(metrics), len(attacks), figsize=(4.6 * len(attacks), 3.3 * len(metrics)),
                             squeeze=False, sharey="row")
    for i, metric in enumerate(metrics):
        for j, attack in enumerate(attacks):
            ax = axes[i][j]
            p = per_seed[(per_seed.attack == attack) & (per_seed.metric == metric)]
            for seed, s in p.groupby("seed"):
                ax.plot(s["budget"], s["gain"], marker="o", alpha=0.8, label=f"robex, seed {seed}")
            m = summary[(summary.attack == attack) & (summary.metric == metric)]
            ax.errorbar(m["budget"], m["gain_mean"], yerr=[m["gain_mean"] - m["gain_low"], m["gain_high"] - m["gain_mean"]],
                        color="black", marker="s", capsize=3, lw=1.5, label="robex, mean [95% CI]")
            ax.plot(m["budget"], m["paper_gain"], "k--", marker="x", label="paper")
            ax.axhline(0, color="grey", lw=0.8)
            ax.text(0.99, 0, "0 = no gain", transform=ax.get_yaxis_transform(), ha="right", va="bottom",
                    fontsize=7, color="grey")
            ax.set_xticks(sorted(m["budget"].unique()))
            ax.set_xlabel("eps1")
            ax.set_ylabel(f"{metric}: ATEX - baseline")
            ax.set_title(attack, fontsize=9)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, bbox_to_anchor=(0.5, -0.02))
    fig.suptitle(stand_in_title(str(paper.title), rows), fontsize=10)
    fig.tight_layout(rect=(0, 0.05, 1, 0.95))
    save_figure(fig, out_dir, per_seed)
