"""The README figure of the GAN baselines: per domain, the K training images, then the first samples of each method.

    python experiments/gan_baselines_figure.py --out docs/gan_baselines_samples.png
(after `snakemake --cores all results/table1.csv` has sampled the GAN methods.)
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from domainstudio.data.images import load_image_folder
from domainstudio.report.figures import labelled_grid


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--world", default="faces"); p.add_argument("--shots", type=int, default=10)
    p.add_argument("--domains", nargs="+", default=["babies", "sunglasses", "sketches", "modigliani"])
    p.add_argument("--methods", nargs="+", default=["tgan", "freezed", "ewc", "cdc"])
    p.add_argument("--per-row", type=int, default=10); p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    rows, labels = [], []
    for domain in a.domains:
        rows.append(load_image_folder(f"data/{a.world}/{domain}/{a.shots}shot", a.resolution, count=a.shots)[: a.per_row])
        labels.append(f"{domain}: train")
        for method in a.methods:
            folder = Path(f"samples/{a.world}/{domain}/{a.shots}shot/{method}/seed0/images")
            rows.append(load_image_folder(folder, a.resolution, count=a.per_row))
            labels.append(method)
    labelled_grid(np.concatenate(rows), labels, a.per_row, a.out)


if __name__ == "__main__":
    main()
