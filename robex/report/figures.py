"""Matplotlib helpers: every figure is saved as PNG next to a CSV holding exactly the plotted values."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from robex.utils import atomic_write_bytes, atomic_write_text  # noqa: E402


def save_figure(fig, out_dir: Path, plotted: pd.DataFrame | list[pd.DataFrame],
                stem: str = "figure") -> pd.DataFrame:
    """Write ``stem.png`` and ``stem.csv`` (the plotted values: a frame, or a list of frames to
    concatenate) atomically; return the plotted frame."""
    import io

    if isinstance(plotted, list):
        plotted = pd.concat(plotted, ignore_index=True) if plotted else pd.DataFrame()

    fig.tight_layout(rect=(0, 0, 1, 0.95))  # room for the suptitle; no overlapping axis labels
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(Path(out_dir) / f"{stem}.png", buf.getvalue())
    atomic_write_text(Path(out_dir) / f"{stem}.csv", plotted.to_csv(index=False))
    return plotted


def subplots(ncols: int, width: float = 4.0, height: float = 3.2, sharey: bool = False):
    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, height), squeeze=False, sharey=sharey)
    return fig, axes[0]


def stand_in_title(title: str, rows: pd.DataFrame) -> str:
    """The figure's title, with the data's STAND-IN source appended when the rows come from an
    offline stand-in that the title does not name (a stand-in is named on every image)."""
    if "source" not in rows or "STAND-IN" in title.upper():
        return title
    sources = sorted({str(s) for s in rows["source"].dropna() if "STAND-IN" in str(s).upper()})
    return f"{title}\n({'; '.join(sources)})" if sources else title
