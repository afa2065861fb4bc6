"""The paper's tables as tidy CSV (plus a Markdown twin) from the per-run metric files.

Every run (world x domain x shots x method x seed) writes ``intra_lpips.json``, ``fid.json``, ``fidelity.json`` and,
in embedded worlds, ``diversity.json``. Runs are joined on their keys and aggregated over seeds: a table row carries
the mean over seeds, ``std`` (the paper's "+-": std over clusters, averaged over seeds) and ``std_seeds`` (std over
seeds, empty with one seed; ``<metric>_std_seeds`` for other metrics). Runs the configuration asked for but whose
files are absent appear with ``status = missing``, never silently dropped. Numbers from the literature
(report/reported/) are appended as ``source = reported`` rows for the same domains; they are never averaged with
measured rows.
"""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from domainstudio.atomic import atomic_file

KEYS = ["world", "domain", "shots", "method", "family"]
FIDELITY = ["c2st_accuracy", "swd", "precision", "recall", "density", "coverage"]   # fidelity.json's headline numbers
TABLES = {
    "table1": ["intra_lpips", "std", "std_seeds", "near_copy_fraction", "factor_diversity", "n_clusters_scored", "n_clusters"],
    "table2": ["fid", "fid_std_seeds", "kid", "c2st_accuracy", "c2st_accuracy_std_seeds", "swd", "swd_std_seeds", "precision", "precision_std_seeds",
               "recall", "recall_std_seeds", "density", "density_std_seeds", "coverage", "coverage_std_seeds", "in_domain",
               "n_reference"],
    "table3_ablation": ["intra_lpips", "std", "std_seeds", "fid", "near_copy_fraction", "factor_diversity", "in_domain", "fid_backbone"],
    "table4_shots": ["intra_lpips", "std", "std_seeds", "fid", "near_copy_fraction", "factor_diversity", "in_domain", "fid_backbone"],
}
COMMON = ["seeds", "n_seeds", "backbone", "n_samples", "status", "source"]
REPORTED_DOMAINS = {"amedeo": "modigliani"}  # literature name -> this project's name
REPORTED_FAMILY = {"TGAN": "gan", "TGAN+ADA": "gan", "EWC": "gan", "CDC": "gan", "DCL": "gan", "DDPM-PA": "ddpm",
                   "DDPM-ANT": "ddpm", "LDM-ANT": "ldm", "ANT": "ddpm"}


def _read(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def run_records(run_dirs: list[str | Path]) -> pd.DataFrame:
    """One row per run directory (results/metrics/<world>/<domain>/<K>shot/<method>/seed<s>/) with all its metrics."""
    rows = []
    for d in map(Path, run_dirs):
        world, domain, shots, method, seed = d.parts[-5:]
        row = {"world": world, "domain": domain, "shots": int(shots.removesuffix("shot")), "method": method,
               "seed": int(seed.removeprefix("seed")), "status": "measured"}
        il, fd, fl, dv = (_read(d / f"{n}.json") for n in ("intra_lpips", "fid", "fidelity", "diversity"))
        row["world"] = (il or fd or {}).get("world", world)  # the record's own world (t2i runs sit one level deeper)
        if il is None and fd is None:
            row["status"] = "missing"
        if il:
            row.update(family=il.get("family"), backbone=il.get("backbone"), n_samples=il.get("n_samples"),
                       **{k: il.get(k) for k in ("intra_lpips", "std", "n_clusters_scored", "n_clusters", "near_copy_fraction")})
        if fd:
            row.update(family=row.get("family") or fd.get("family"), fid_backbone=fd.get("fid_backbone"), fid_n_samples=fd.get("n_samples"),
                       **{k: fd.get(k) for k in ("fid", "kid", "n_reference")})
            row.setdefault("n_samples", fd.get("n_samples"))
        if fl:
            row.update({k: fl.get(k) for k in FIDELITY})
        if dv:
            row.update(factor_diversity=dv.get("factor_diversity"), in_domain=dv.get("in_domain"))
        rows.append(row)
    return pd.DataFrame(rows)


def aggregate(runs: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """Mean over seeds per world x domain x shots x method; std over seeds beside the std over clusters."""
    out = []
    for key, g in runs.groupby(["world", "domain", "shots", "method"], sort=True, dropna=False):
        measured = g[g["status"] == "measured"]
        row = dict(zip(["world", "domain", "shots", "method"], key))
        row["family"] = next((f for f in g.get("family", pd.Series(dtype=object)) if isinstance(f, str)), None)
        row["seeds"] = ",".join(str(s) for s in sorted(measured["seed"]))
        row["n_seeds"] = len(measured)
        missing = sorted(g.loc[g["status"] == "missing", "seed"])
        row["status"] = "measured" if not missing else ("missing" if measured.empty else f"missing seeds {missing}")
        fid_table = metrics[0] == "fid"
        row["backbone"] = _one(measured, "fid_backbone" if fid_table else "backbone")
        row["n_samples"] = _one(measured, "fid_n_samples" if fid_table else "n_samples")
        for m in metrics:
            if m == "fid_backbone":
                row[m] = _one(measured, m)
            elif m.endswith("std_seeds"):
                base = "intra_lpips" if m == "std_seeds" else m.removesuffix("_std_seeds")
                vals = measured[base].dropna() if base in measured else []
                row[m] = float(np.std(vals, ddof=1)) if len(vals) > 1 else None
            elif m in measured and measured[m].notna().any():
                row[m] = float(measured[m].astype(float).mean())
            else:
                row[m] = None
        row["source"] = "measured"
        out.append(row)
    return pd.DataFrame(out)


def _one(df: pd.DataFrame, col: str):
    vals = df[col].dropna().unique() if col in df else []
    return vals[0] if len(vals) == 1 else (",".join(map(str, vals)) if len(vals) else None)


def reported_rows(metric: str, domains: list[str]) -> pd.DataFrame:
    """Literature rows for ``metric`` (intra_lpips or fid) in ``domains``, labelled source = reported."""
    name = "reported_intra_lpips.csv" if metric == "intra_lpips" else "reported_fid.csv"
    with resources.files("domainstudio.report").joinpath("reported", name).open() as fh:
        df = pd.read_csv(fh)
    df["domain"] = df["domain"].replace(REPORTED_DOMAINS)
    df = df[df["domain"].isin(domains)].copy()
    df["world"], df["shots"], df["seeds"], df["n_seeds"], df["status"], df["source"] = "ffhq", 10, None, None, "reported", "reported"
    df["family"] = df["method"].map(REPORTED_FAMILY)
    df["backbone"] = "vgg (CDC protocol, real images)" if metric == "intra_lpips" else "inception (pytorch-fid, real images)"
    df["n_samples"] = 1000 if metric == "intra_lpips" else 5000
    return df.rename(columns={"note": "reported_note"})


def build_table(runs: pd.DataFrame, table: str, out: str | Path, reported: str | None = None) -> pd.DataFrame:
    """Write one table (CSV and .md twin); ``reported``: append literature rows of that metric."""
    metrics = TABLES[table]
    df = aggregate(runs, metrics) if len(runs) else pd.DataFrame(columns=KEYS + metrics + COMMON)
    columns = KEYS + metrics + COMMON
    if reported:
        rep = reported_rows(reported, sorted(set(df["domain"])))
        df = pd.concat([df, rep], ignore_index=True) if len(df) else rep
        columns.append("reported_note")
    df = df.reindex(columns=columns)
    with atomic_file(out) as tmp:
        df.to_csv(tmp, index=False, float_format="%.4f")
    with atomic_file(Path(out).with_suffix(".md")) as tmp:
        tmp.write_text(markdown(df, metrics))
    return df


def _fmt(v, digits=3) -> str:
    if _missing(v):
        return ""
    return f"{v:.{digits}f}" if isinstance(v, (float, np.floating)) else str(v)


def markdown(df: pd.DataFrame, metrics: list[str]) -> str:
    """A readable twin: mean +- std over clusters, then (+- std over seeds) when there are several seeds."""
    head = [c for c in ("domain", "shots", "method", "family") if c in df]
    head += [m for m in metrics if m not in ("std", "fid_backbone") and not m.endswith("std_seeds")] + ["backbone"]
    head += ["fid_backbone"] * ("fid_backbone" in metrics) + ["seeds", "source", "status"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in df.iterrows():
        cells = []
        for c in head:
            v = r.get(c)
            if c == "intra_lpips" and not _missing(v):
                v = (f"{v:.3f}" + ("" if _missing(r.get("std")) else f" ± {r['std']:.3f}")  # one cluster (1 shot): no std
                     + ("" if _missing(r.get("std_seeds")) else f" (seeds ± {r['std_seeds']:.3f})"))
            elif (c == "fid" or f"{c}_std_seeds" in metrics) and not _missing(v):
                digits = 2 if c == "fid" else 3
                v = f"{v:.{digits}f}" + ("" if _missing(r.get(f"{c}_std_seeds")) else f" (seeds ± {r[f'{c}_std_seeds']:.{digits}f})")
            if c.startswith("n_") and not _missing(v) and not isinstance(v, str):
                v = str(int(v))
            cells.append(_fmt(v, 4 if c == "kid" else 3))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v))


def summary_metrics(runs: pd.DataFrame) -> dict:
    """Per method, the mean over domains of each headline metric: results/metrics.json for ``dvc metrics show``."""
    measured = runs[runs["status"] == "measured"]
    out = {}
    for method, g in measured.groupby("method"):
        out[method] = {m: round(float(g[m].astype(float).mean()), 5) for m in ("intra_lpips", "fid", "kid", *FIDELITY, "near_copy_fraction",
                                                                                  "factor_diversity", "in_domain")
                       if m in g and g[m].notna().any()}
    return out
