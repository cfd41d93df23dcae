"""Shared writer of claims reports: a Markdown table of (claim, PASS / FAIL / MISSING, numbers)."""
from __future__ import annotations

from pathlib import Path

from robex.utils import atomic_write_text

Claim = tuple[str, "bool | None", str]  # (claim with its criterion, verdict or None if missing, numbers)


def verdict(ok: bool | None) -> str:
    return "MISSING" if ok is None else ("PASS" if ok else "FAIL")


def write_claims(path: Path, title: str, intro: str, claims: list[Claim]) -> dict[str, int]:
    lines = [f"# {title}", "", intro, "", "| claim | verdict | numbers |", "|---|---|---|"]
    lines += [f"| {c} | {verdict(ok)} | {n} |" for c, ok, n in claims]
    counts = {v: sum(verdict(ok) == v for _, ok, _ in claims) for v in ("PASS", "FAIL", "MISSING")}
    lines += ["", f"{counts['PASS']} PASS, {counts['FAIL']} FAIL, {counts['MISSING']} MISSING."]
    atomic_write_text(path, "\n".join(lines) + "\n")
    print(f"claims: {counts} -> {path}")
    return counts
