"""Mean +- std over seeds of every headline metric, per domain and method, as a Markdown table (the README's).

    python experiments/seeds_summary.py --world faces --shots 10 --methods ddpm-ft domainstudio domainstudio-paper

Reads the per-run metric folders (results/metrics/<world>/<domain>/<K>shot/<method>/seed<s>/) with the tables' own
reader (report/tables.py: run_records) and prints one row per method: for each domain, Intra-LPIPS, near-copy
fraction, FID and in-domain fraction as mean +- std over the seeds found (sample std, n - 1). The tables give the
std over seeds of Intra-LPIPS and FID only; this adds it for the other two. ``--wide`` prints one row per domain
and method with every measure of tables 1 and 2 instead (docs/metrics.md's three-seed table).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from domainstudio.report.tables import run_records

METRICS = {"intra_lpips": ("Intra-LPIPS", 3), "near_copy_fraction": ("near-copy", 2), "fid": ("FID", 1), "in_domain": ("in-domain", 2)}


def summary(runs, methods: list[str], domains: list[str]) -> str:
    lines = []
    for metric, (label, digits) in METRICS.items():
        lines.append(f"| {label} | " + " | ".join(domains) + " |")
        lines.append("|---|" + "---|" * len(domains))
        for method in methods:
            cells = []
            for domain in domains:
                vals = runs[(runs["method"] == method) & (runs["domain"] == domain)][metric].dropna().astype(float)
                cells.append(f"{vals.mean():.{digits}f} +- {vals.std(ddof=1):.{digits}f} (n={len(vals)})" if len(vals) > 1 else
                             (f"{vals.mean():.{digits}f} (n=1)" if len(vals) else "-"))
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


# --wide: one row per domain and method, every measure of tables 1 and 2 (docs/metrics.md's three-seed table)
WIDE = {"intra_lpips": ("Intra-LPIPS", 3, True), "near_copy_fraction": ("near-copy", 2, False), "fid": ("FID", 1, True),
        "c2st_accuracy": ("c2st", 3, True), "swd": ("swd", 0, True), "precision": ("precision", 2, True),
        "density": ("density", 2, True), "recall": ("recall", 2, False), "coverage": ("coverage", 2, False),
        "in_domain": ("in-domain", 2, False)}


def wide(runs, methods: list[str], domains: list[str]) -> str:
    """Mean over seeds of every measure per (domain, method), with the sample std over seeds where WIDE says so."""
    lines = ["| domain | method | " + " | ".join(label for label, _, _ in WIDE.values()) + " | seeds |",
             "|---|---|" + "---|" * (len(WIDE) + 1)]
    for domain in domains:
        for method in methods:
            g = runs[(runs["method"] == method) & (runs["domain"] == domain)]
            if g.empty:
                continue
            cells = []
            for metric, (_, digits, with_std) in WIDE.items():
                vals = g[metric].dropna().astype(float) if metric in g else []
                if not len(vals):
                    cells.append("-")
                    continue
                cell = f"{vals.mean():.{digits}f}"
                cells.append(cell + (f" +- {vals.std(ddof=1):.{digits}f}" if with_std and len(vals) > 1 else ""))
            lines.append(f"| {domain} | {method} | " + " | ".join(cells) + f" | {len(g)} |")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", default="results/metrics"); p.add_argument("--world", default="faces")
    p.add_argument("--shots", type=int, default=10); p.add_argument("--methods", nargs="+", required=True)
    p.add_argument("--domains", nargs="+", default=["babies", "sunglasses", "sketches", "modigliani"])
    p.add_argument("--wide", action="store_true", help="one row per domain and method, every measure of tables 1 and 2")
    a = p.parse_args()
    dirs = sorted(d for d in Path(a.results, a.world).glob(f"*/{a.shots}shot/*/seed*") if d.is_dir())
    if not dirs:
        raise SystemExit(f"no runs under {Path(a.results, a.world)}/*/{a.shots}shot/: run the tables' snakemake command first")
    runs = run_records(dirs)
    runs = runs[runs["status"] == "measured"]
    print(wide(runs, a.methods, a.domains) if a.wide else summary(runs, a.methods, a.domains))


if __name__ == "__main__":
    main()
