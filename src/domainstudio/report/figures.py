"""Figures for the README and the report (matplotlib, PNG)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from domainstudio.atomic import atomic_file


def labelled_grid(images: np.ndarray, row_labels: list[str], per_row: int, out: str | Path, scale: float = 0.55) -> None:
    """Rows of images, one labelled row per group (e.g. one per domain)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = len(row_labels)
    fig, axes = plt.subplots(rows, per_row, figsize=(per_row * scale * 1.6, rows * scale * 1.6), squeeze=False)
    for r in range(rows):
        for c in range(per_row):
            ax = axes[r][c]
            ax.imshow(images[r * per_row + c], interpolation="nearest")
            ax.set_xticks([]); ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
        axes[r][0].set_ylabel(row_labels[r], rotation=0, ha="right", va="center", fontsize=9)
    fig.subplots_adjust(wspace=0.04, hspace=0.04, left=0.14, right=0.99, top=0.99, bottom=0.01)
    with atomic_file(out) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
