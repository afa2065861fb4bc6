"""The report verbs: the paper's tables, the claims table, the figures, and the Markdown report with the DVC metrics summary."""
from __future__ import annotations

import json
from pathlib import Path


def cmd_table(a):
    from domainstudio.report.tables import build_table, run_records

    build_table(run_records(a.runs), a.table, a.out, a.reported)


def cmd_claims(a):
    from domainstudio.report.claims import write_claims
    from domainstudio.report.tables import run_records

    write_claims(run_records(a.runs), a.out)


def cmd_figures(a):
    import pandas as pd

    from domainstudio.data.images import load_image_folder
    from domainstudio.metrics.backbones import lpips_embedding
    from domainstudio.metrics.lpips_embedding import squared_distances
    from domainstudio.report.figures import metric_bars, nearest_neighbours, sample_matrix

    out = Path(a.out_dir)
    run = lambda d, m: Path(a.samples_root) / d / f"{a.shots}shot" / m / f"seed{a.seed}" / "images"
    cells = {(m, d): load_image_folder(run(d, m), a.resolution, count=16) for d in a.domains for m in a.methods}
    training = {d: load_image_folder(Path(a.data_root) / d / f"{a.shots}shot", a.resolution, count=a.shots) for d in a.domains}
    sample_matrix(cells, a.methods, a.domains, out / f"{a.world}_samples.png", training)
    embedding = lpips_embedding(a.backbone, a.resize, a.embedded_backbone)
    for d in a.domains:
        samples = {m: load_image_folder(run(d, m), a.resolution, count=a.per_row) for m in a.methods}
        e_train = embedding(training[d])
        nearest = {m: squared_distances(embedding(x), e_train).argmin(1).numpy() for m, x in samples.items()}
        nearest_neighbours(training[d], samples, nearest, out / f"{a.world}_{d}_nearest.png",
                           title=f"{d}, {a.shots}-shot: samples and their nearest training image ({a.backbone} LPIPS)")
    metric_bars(pd.read_csv(a.table1), "intra_lpips", "std", out / f"{a.world}_intra_lpips.png", "Intra-LPIPS (+- std over clusters)")
    metric_bars(pd.read_csv(a.table2), "fid", "fid_std_seeds", out / f"{a.world}_fid.png", "FID (lower is better)")


def cmd_report(a):
    from domainstudio.report.document import write_metrics_json, write_report
    from domainstudio.report.tables import run_records, summary_metrics

    write_report(json.loads(a.config_json), a.results, a.benchmarks, a.out)
    write_metrics_json(summary_metrics(run_records(a.runs)), a.metrics_json)


def cmd_calibration_report(a):
    """The calibration tables of every domain in one Markdown page, a figure per domain, and the degradations shown on
    a few reference images of each domain."""
    import numpy as np
    import pandas as pd

    from domainstudio.atomic import atomic_file
    from domainstudio.data.images import load_image_folder
    from domainstudio.metrics.calibration import markdown, method_spread
    from domainstudio.report.figures import calibration_curves, degradation_examples

    table2 = pd.read_csv(a.table2) if a.table2 else None
    sections, out_dir = [], Path(a.figure_dir)
    for path in a.calibrations:
        cal = pd.read_csv(path)
        domain, backbone = cal["domain"].iloc[0], cal["backbone"].iloc[0]
        spread = method_spread(table2, domain) if table2 is not None else {}
        sections.append(markdown(cal, spread, backbone))
        calibration_curves(cal, spread, out_dir / f"{a.world}_calibration_{domain}.png",
                           f"{domain}: fidelity measures under degradations ({backbone}); grey: floor, blue: methods in table 2")
    with atomic_file(a.out) as tmp:
        Path(tmp).write_text(f"# Calibration of the fidelity measures ({a.world})\n\n" + "\n".join(sections))
    examples = np.concatenate([load_image_folder(Path(a.data_root) / d / "reference", a.resolution, count=1) for d in a.domains])
    degradation_examples(examples, out_dir / f"{a.world}_degradations.png")


def add_verbs(verb) -> None:
    s = verb("table", cmd_table, "One of the paper's tables (CSV + Markdown twin) from per-run metric folders")
    s.add_argument("--table", required=True, choices=["table1", "table2", "table3_ablation", "table4_shots"])
    s.add_argument("--reported", choices=["intra_lpips", "fid"], help="append the literature's rows of this metric")
    s.add_argument("--out", required=True); s.add_argument("runs", nargs="+", help="results/metrics/<world>/<domain>/<K>shot/<method>/seed<s> folders")

    s = verb("claims", cmd_claims, "The paper's claims decided over seeds (Welch intervals, 95 percent): CSV + Markdown twin")
    s.add_argument("--out", required=True); s.add_argument("runs", nargs="+", help="the run folders of tables 1 and 2")

    s = verb("figures", cmd_figures, "Sample grid (methods x domains), nearest-training-image figures and metric bar charts")
    s.add_argument("--world", required=True); s.add_argument("--samples-root", required=True); s.add_argument("--data-root", required=True)
    s.add_argument("--domains", nargs="+", required=True); s.add_argument("--methods", nargs="+", required=True)
    s.add_argument("--shots", type=int, required=True); s.add_argument("--seed", type=int, default=0); s.add_argument("--resolution", type=int, required=True)
    s.add_argument("--backbone", default="embedded"); s.add_argument("--embedded-backbone"); s.add_argument("--resize", type=int)
    s.add_argument("--per-row", type=int, default=10); s.add_argument("--table1", required=True); s.add_argument("--table2", required=True)
    s.add_argument("--out-dir", required=True)

    s = verb("report", cmd_report, "results/report.md and the DVC metrics summary")
    s.add_argument("--config-json", required=True, help="the workflow's configuration as JSON"); s.add_argument("--results", default="results")
    s.add_argument("--benchmarks", default="logs/benchmarks"); s.add_argument("--out", required=True); s.add_argument("--metrics-json", required=True)
    s.add_argument("runs", nargs="+")

    s = verb("calibration-report", cmd_calibration_report, "The calibration of the fidelity measures: Markdown tables and figures")
    s.add_argument("--world", default="faces"); s.add_argument("--domains", nargs="+", required=True)
    s.add_argument("--data-root", required=True); s.add_argument("--resolution", type=int, required=True)
    s.add_argument("--table2", help="table 2 CSV: the spread between methods beside each measure")
    s.add_argument("--figure-dir", required=True); s.add_argument("--out", required=True, help="Markdown page")
    s.add_argument("calibrations", nargs="+", help="results/calibration/<world>/<domain>.csv files")
