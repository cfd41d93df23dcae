"""The results index (results/README.md) and re-rendering a table from its committed rows."""
import shutil
import subprocess
from pathlib import Path

import pytest

from robex.errors import RobexError
from robex.report.index import PAPERS, artifact_status, build_index, claim_counts
from robex.report.rerender import rerender

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"


def _tracked() -> set[str]:
    out = subprocess.run(["git", "ls-files", "results"], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_the_committed_index_is_current_and_every_link_is_a_committed_file():
    import re

    index = (RESULTS / "README.md").read_text()
    assert index == build_index(RESULTS), "results/README.md is stale: python -m robex.report.index results"
    links = re.findall(r"\]\(([^)]+)\)", index)
    assert len(links) >= 20
    tracked = _tracked()
    missing = [link for link in links if f"results/{link}" not in tracked]
    assert not missing, missing
    for presets in PAPERS.values():  # every artifact of every paper has a row
        for preset in presets:
            assert f"`paper={preset}`" in index


def test_artifact_status_tells_stand_in_unavailable_and_not_run_apart(tmp_path):
    (tmp_path / "aggmean_tab1").mkdir()
    (tmp_path / "aggmean_tab1" / "table.md").write_text("# t\n")
    (tmp_path / "aggmean_tab1" / "run.md").write_text("# aggmean_tab1: how\n- wall time of the sweep: 251 s (5 jobs)\n")
    assert artifact_status(tmp_path / "aggmean_tab1")[0::2] == ("stand-in", "aggmean_tab1/table.md")
    assert artifact_status(tmp_path / "aggmean_tab1")[3] == "251 s"
    # a render of cached jobs took seconds: the index also gives what the jobs took
    (tmp_path / "aggmean_tab1" / "run.md").write_text(
        "- wall time of the sweep: 3 s (5 jobs, 5 of them reused from the cache)\n"
        "- compute time of its jobs when first computed: 4294 s (sum over 5 jobs)\n")
    assert artifact_status(tmp_path / "aggmean_tab1")[3] == "3 s (from the cache; its jobs took 4294 s)"
    (tmp_path / "aggmean_tab1" / "run.md").write_text(
        "- wall time of the sweep: 40 s (5 jobs, 4 of them reused from the cache)\n"
        "- compute time of its jobs when first computed: 4294 s (sum over 5 jobs)\n")
    assert artifact_status(tmp_path / "aggmean_tab1")[3] == "40 s"
    (tmp_path / "aggmean_tab2").mkdir()
    (tmp_path / "aggmean_tab2" / "run.md").write_text("# aggmean_tab2: unavailable\n\n- reason: no benchmark at x\n")
    assert artifact_status(tmp_path / "aggmean_tab2")[0] == "unavailable: no benchmark at x"
    assert artifact_status(tmp_path / "atex_tab1")[0] == "not run"
    (tmp_path / "atex_tab1").mkdir()
    (tmp_path / "atex_tab1" / "table.md").write_text("# t\n")
    assert artifact_status(tmp_path / "atex_tab1")[0] == "reproduced"  # FashionMNIST: the paper's own data


def test_claim_counts_read_the_verdict_column_even_when_a_claim_holds_a_bar(tmp_path):
    path = tmp_path / "x_claims.md"
    path.write_text("| claim | verdict | estimates |\n|---|---|---|\n| a |x - y| <= 0.02 | PASS | c |\n"
                    "| b | FAIL | c |\n| c | NOT DISTINGUISHABLE | c |\n| d | PASS | c |\n")
    assert claim_counts(path) == {"PASS": 2, "FAIL": 1, "NOT DISTINGUISHABLE": 1, "MISSING": 0}
    assert claim_counts(tmp_path / "none.md") is None


def test_rerender_redraws_a_table_from_its_committed_rows_and_refuses_an_array_figure(tmp_path):
    shutil.copytree(RESULTS / "aggmean_tab4", tmp_path / "aggmean_tab4")
    rows_before = (tmp_path / "aggmean_tab4" / "metrics.csv").read_bytes()
    (tmp_path / "aggmean_tab4" / "table.md").write_text("stale")
    rerender("aggmean_tab4", tmp_path)
    assert (tmp_path / "aggmean_tab4" / "table.md").read_text() == (RESULTS / "aggmean_tab4" / "table.md").read_text()
    assert (tmp_path / "aggmean_tab4" / "metrics.csv").read_bytes() == rows_before
    with pytest.raises(RobexError, match="arrays, which are not committed"):
        rerender("aggmean_fig5", tmp_path)
