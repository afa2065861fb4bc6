"""Figures for the docs and the report (matplotlib, PNG)."""
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


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out) -> None:
    plt = _plt()
    with atomic_file(out) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def mosaic(images: np.ndarray, columns: int) -> np.ndarray:
    """A rows x columns tile of equally sized uint8 images (1 px white gaps)."""
    n, h, w, c = images.shape
    rows = -(-n // columns)
    out = np.full((rows * (h + 1) - 1, columns * (w + 1) - 1, c), 255, np.uint8)
    for i, im in enumerate(images):
        r, q = divmod(i, columns)
        out[r * (h + 1): r * (h + 1) + h, q * (w + 1): q * (w + 1) + w] = im
    return out


def sample_matrix(cells: dict[tuple[str, str], np.ndarray], methods: list[str], domains: list[str], out: str | Path,
                  training: dict[str, np.ndarray] | None = None, per_cell: int = 16) -> None:
    """One panel per method (rows) x domain (columns), each the first ``per_cell`` samples; optional first row of
    the K training images of each domain."""
    plt = _plt()
    row_names = (["training images"] if training else []) + methods
    fig, axes = plt.subplots(len(row_names), len(domains), figsize=(2.3 * len(domains), 2.3 * len(row_names)), squeeze=False)
    side = int(np.ceil(np.sqrt(per_cell)))
    for r, name in enumerate(row_names):
        for c, domain in enumerate(domains):
            ax = axes[r][c]
            images = training.get(domain) if training and r == 0 else cells.get((name, domain))
            if images is not None and len(images):
                ax.imshow(mosaic(images[:per_cell], side if r or not training else min(len(images), 5)), interpolation="nearest")
            else:
                ax.text(0.5, 0.5, "missing", ha="center", va="center")
            ax.set_xticks([]); ax.set_yticks([])
            if r == 0:
                ax.set_title(domain, fontsize=10)
            if c == 0:
                ax.set_ylabel(name, fontsize=10)
    fig.tight_layout()
    _save(fig, out)


def nearest_neighbours(training: np.ndarray, samples: dict[str, np.ndarray], nearest: dict[str, np.ndarray], out: str | Path,
                       title: str = "") -> None:
    """The memorisation check: the K training images, then per method a row of samples with, beneath each, the
    training image it is nearest to (by the LPIPS backbone), drawn as it is (no fading: on a dark domain a faded
    neighbour looks unlike a sample that copies it)."""
    plt = _plt()
    methods = list(samples)
    n = max(len(training), max(len(s) for s in samples.values()))
    rows = 1 + 2 * len(methods)
    fig, axes = plt.subplots(rows, n, figsize=(0.75 * n + 1.2, 0.8 * rows), squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([]); ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
    for i, im in enumerate(training):
        axes[0][i].imshow(im, interpolation="nearest")
    axes[0][0].set_ylabel("training", rotation=0, ha="right", va="center", fontsize=8)
    for m, method in enumerate(methods):
        for i, (im, k) in enumerate(zip(samples[method], nearest[method])):
            axes[1 + 2 * m][i].imshow(im, interpolation="nearest")
            axes[2 + 2 * m][i].imshow(training[k], interpolation="nearest")
        axes[1 + 2 * m][0].set_ylabel(method, rotation=0, ha="right", va="center", fontsize=8)
        axes[2 + 2 * m][0].set_ylabel("its nearest", rotation=0, ha="right", va="center", fontsize=7, color="0.4")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.subplots_adjust(wspace=0.05, hspace=0.08, left=0.13, right=0.99, top=0.93 if title else 0.99, bottom=0.01)
    _save(fig, out)


def metric_bars(table: "pd.DataFrame", metric: str, err: str | None, out: str | Path, ylabel: str) -> None:
    """Grouped bars: one group per domain, one bar per method, error bars from column ``err``."""
    plt = _plt()
    table = table[table["source"] == "measured"]
    domains = list(dict.fromkeys(table["domain"]))
    methods = list(dict.fromkeys(table["method"]))
    width = 0.8 / max(len(methods), 1)
    fig, ax = plt.subplots(figsize=(1.2 + 1.6 * len(domains), 3.2))
    for j, method in enumerate(methods):
        sub = table[table["method"] == method].set_index("domain").reindex(domains)
        yerr = sub[err].astype(float).fillna(0).to_numpy() if err and err in sub else None
        ax.bar(np.arange(len(domains)) + (j - (len(methods) - 1) / 2) * width, sub[metric].astype(float), width,
               yerr=yerr, capsize=2, label=method)
    ax.set_xticks(np.arange(len(domains)), domains)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7, ncol=min(len(methods), 4), frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    _save(fig, out)


def quality_curve(rows: list[dict], out: str | Path, label: str = "source model") -> None:
    """FID against fresh source images over training steps, with the floor of two disjoint fresh sets."""
    plt = _plt()
    steps = [r["step"] for r in rows]
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    ax.plot(steps, [r["fid"] for r in rows], "o-", label=label)
    ax.axhline(rows[0]["floor"], color="grey", ls="--", label="floor (fresh vs fresh)")
    ax.set_yscale("log")
    ax.set_xlabel("training steps")
    ax.set_ylabel(f"FID vs {rows[0]['samples']} fresh source images")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()  # keeps the axis labels inside the picture
    _save(fig, out)


def calibration_curves(calibration: "pd.DataFrame", spread: dict[str, dict], out: str | Path, title: str) -> None:
    """One panel per fidelity measure: its value under each degradation at strength levels 1-3 (training family
    dashed, validation family solid), the floor (grey band: mean +- 2 std over splits) and the range of the methods'
    means in table 2 (blue band), so a reader sees which differences a measure can resolve (metrics/calibration.py)."""
    from domainstudio.metrics.calibration import MEASURES

    plt = _plt()
    measures = [m for m in MEASURES if m in calibration]
    cols = 4
    rows = -(-len(measures) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 3.3, rows * 2.9), squeeze=False)
    floor = calibration[calibration["degradation"] == "none"]
    degraded = calibration[calibration["degradation"] != "none"]
    names = list(dict.fromkeys(degraded["degradation"]))
    colours = plt.get_cmap("tab10")
    for ax, m in zip(axes.flat, measures):
        mean, std = floor[m].mean(), floor[m].std(ddof=1) if len(floor) > 1 else 0.0
        ax.axhspan(mean - 2 * std, mean + 2 * std, color="0.8", zorder=0)
        ax.axhline(mean, color="0.5", lw=0.8, zorder=0)
        if m in spread:
            ax.axhspan(spread[m]["min"], spread[m]["max"], color="tab:blue", alpha=0.15, zorder=0)
        for i, name in enumerate(names):
            d = degraded[degraded["degradation"] == name].sort_values("level")
            ax.plot([0, *d["level"]], [mean, *d[m]], marker="o", ms=3, lw=1.2, color=colours(i % 10),
                    ls="--" if d["family"].iloc[0] == "training" else "-", label=name)
        ax.set_title(m, fontsize=9)
        ax.set_xticks([0, 1, 2, 3])
        ax.set_xlabel("strength level (0: none)", fontsize=7)
        ax.tick_params(labelsize=7)
        if m in ("fid", "kid"):
            ax.set_yscale("symlog", linthresh=1.0 if m == "fid" else 1e-3)
    for ax in list(axes.flat)[len(measures):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 5), fontsize=7, frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.07, 1, 0.97))
    _save(fig, out)


def degradation_examples(images: np.ndarray, out: str | Path, seed: int = 0) -> None:
    """Each degradation of metrics/degradations.py at its three strengths on the same few images: one row per
    degradation (its strengths in the label), the clean images first, then one block per strength."""
    from domainstudio.metrics.degradations import DEGRADATIONS, TRAINING_FAMILY, degrade

    n, h = len(images), images.shape[1]
    gap = np.full((h, h // 2, 3), 255, np.uint8)
    rows, labels = [], []
    for name, (_, strengths, meaning) in DEGRADATIONS.items():
        blocks = [images, *(degrade(images, name, s, seed) for s in strengths)]
        rows.append(np.concatenate([x for b in blocks for x in (np.concatenate(list(b), 1), gap)][:-1], 1))
        family = "training" if name in TRAINING_FAMILY else "validation"
        labels.append(f"{name} ({family})\n{', '.join(f'{s:g}' for s in strengths)}: {meaning}")
    sheet = np.concatenate([x for r in rows for x in (r, np.full((h // 4, r.shape[1], 3), 255, np.uint8))][:-1], 0)
    plt = _plt()
    width = sheet.shape[1] / 28 + 3.0  # 3 inches for the row labels
    fig, ax = plt.subplots(figsize=(width, sheet.shape[0] / 28 + 0.4))
    ax.imshow(sheet, interpolation="nearest")
    ax.set_yticks([i * (h + h // 4) + h / 2 for i in range(len(rows))], labels, fontsize=7)
    ax.set_xticks([(n * h + h // 2) * (k + 0.5) - h / 4 for k in range(4)], ["clean", "level 1", "level 2", "level 3"], fontsize=8)
    ax.xaxis.tick_top()
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.tick_params(length=0)
    fig.subplots_adjust(left=3.0 / width, right=0.99, top=1 - 0.4 / (sheet.shape[0] / 28 + 0.4), bottom=0.01)
    _save(fig, out)
