"""Tables of results: tidy CSV rows from the per-run metric files."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from domainstudio.atomic import atomic_file

TABLE1_COLUMNS = ["world", "domain", "shots", "method", "family", "seed", "backbone", "n_samples",
                  "intra_lpips", "std", "n_clusters_scored", "n_clusters", "source"]


def intra_lpips_table(metric_files: list[str | Path], out: str | Path) -> pd.DataFrame:
    """Table 1: Intra-LPIPS, one row per world x domain x shots x method x seed (measured rows only)."""
    rows = []
    for f in metric_files:
        record = json.loads(Path(f).read_text())
        missing = [c for c in TABLE1_COLUMNS if c not in record and c not in ("source",)]
        if missing:
            raise ValueError(f"{f}: metric record lacks {missing}")
        rows.append({**{c: record.get(c) for c in TABLE1_COLUMNS}, "source": "measured"})
    table = pd.DataFrame(rows, columns=TABLE1_COLUMNS)
    table = table.sort_values(["world", "domain", "shots", "method", "seed"], key=lambda s: s.astype(str)).reset_index(drop=True)
    with atomic_file(out) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4f")
    return table
