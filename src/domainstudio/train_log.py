"""train_log.csv of every trainer (diffusion, GAN, text-to-image). Free of torch and diffusers, so that the GAN
trainer does not import the diffusion trainer (and diffusers, ~6 s per job) for it."""
from __future__ import annotations

import csv

from domainstudio.atomic import atomic_file


def write_train_log(rows: list[dict], log_csv) -> None:
    """One row per logged step, columns in order of first appearance, written atomically; nothing when empty."""
    if not rows:
        return
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with atomic_file(log_csv) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
