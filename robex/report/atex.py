"""ATEX Tables 1-4: accuracy, rank correlation and top-k intersection per eps, ATEX vs baseline,
paper beside robex, with the random-noise control and the attack's own facts."""
from __future__ import annotations

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from robex.report.tables import fmt, lookup, markdown_table, paper_vs, write_table

DEFENSES = {"atex": "ATEX", "none": "baseline [8]"}


def render_table(rows: pd.DataFrame, paper: DictConfig, out_dir, arrays=None) -> pd.DataFrame:
    """Render ``table.csv`` (tidy: eps, quantity, defense, attack, paper, robex, se) and
    ``table.md`` (the paper's shape plus the control and facts). ``eps`` is the paper's eps1: the
    attack's threat budget, and ATEX's own budget (the presets set both to it)."""
    reported = {float(r["eps"]): r for r in OmegaConf.to_container(paper.reported)}
    attack = paper.attack
    control = paper.get("control", "random")
    tidy, body = [], []
    for eps in sorted(reported):
        rep = reported[eps]
        cells = {}
        for d in DEFENSES:
            acc = lookup(rows, "accuracy", budget=eps, defense=d, attack=attack)
            tidy.append(dict(eps=eps, quantity="accuracy", defense=d, attack=attack,
                             paper=rep.get("accuracy") if d == "atex" else None, robex=acc[0], se=acc[1]))
            cells[("accuracy", d)] = acc[0]
            for metric in ("spearman", "topk"):
                for att in (attack, control):
                    v = lookup(rows, metric, budget=eps, defense=d, attack=att)
                    ref = rep.get(f"{metric}_{'atex' if d == 'atex' else 'baseline'}") if att == attack else None
                    tidy.append(dict(eps=eps, quantity=metric, defense=d, attack=att, paper=ref,
                                     robex=v[0], se=v[1]))
                    cells[(metric, d, att)] = v[0]
                    if att == attack:
                        cells[(metric, d, "paper")] = ref
            for fact in ("label_kept", "objective_before", "objective_after"):
                v = lookup(rows, fact, budget=eps, defense=d, attack=attack)
                tidy.append(dict(eps=eps, quantity=fact, defense=d, attack=attack, paper=None,
                                 robex=v[0], se=v[1]))
                cells[(fact, d)] = v[0]
        body.append([
            f"{eps:g}",
            paper_vs(rep.get("accuracy"), cells[("accuracy", "atex")]),
            fmt(cells[("accuracy", "none")]),
            paper_vs(cells[("spearman", "atex", "paper")], cells[("spearman", "atex", attack)]),
            paper_vs(cells[("spearman", "none", "paper")], cells[("spearman", "none", attack)]),
            paper_vs(cells[("topk", "atex", "paper")], cells[("topk", "atex", attack)]),
            paper_vs(cells[("topk", "none", "paper")], cells[("topk", "none", attack)]),
            f"{fmt(cells[('spearman', 'atex', control)])} / {fmt(cells[('spearman', 'none', control)])}",
            f"{fmt(cells[('topk', 'atex', control)])} / {fmt(cells[('topk', 'none', control)])}",
            f"{fmt(cells[('objective_before', 'atex')])} -> {fmt(cells[('objective_after', 'atex')])}; "
            f"{fmt(cells[('objective_before', 'none')])} -> {fmt(cells[('objective_after', 'none')])}",
        ])
    header = ["eps1", "accuracy ATEX (paper / robex)", "accuracy baseline (robex)",
              "rank corr ATEX (paper / robex)", "rank corr baseline (paper / robex)",
              "top-k ATEX (paper / robex)", "top-k baseline (paper / robex)",
              f"control '{control}': rank corr ATEX / baseline", f"control: top-k ATEX / baseline",
              "attack objective before -> after (ATEX; baseline)"]
    source = ", ".join(sorted(set(rows["source"].astype(str)))) if len(rows) else "n/a"
    n_eval = ", ".join(sorted({str(int(n)) for n in rows[rows["metric"] == "spearman"]["n"]})) if len(rows) else "n/a"
    md = (f"# {paper.title}\n\n"
          f"Data: {source}. Attack `{attack}` on the first {n_eval} test images; "
          f"control `{control}`: uniform random steps under the same eps, projection and label rule. "
          f"Cells are paper / robex; robex values are means (standard errors in table.csv).\n\n"
          + markdown_table(header, body))
    tidy = pd.DataFrame(tidy)
    write_table(out_dir, "table", tidy, md)
    return tidy
