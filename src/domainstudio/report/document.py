"""results/report.md: the page a reader opens first (setup, tables, claims, figures, caveats, time per stage)."""
from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import pandas as pd

from domainstudio.atomic import atomic_file
from domainstudio.metrics.two_sample import TwoSampleConfig

TABLE_TITLES = {
    "table1": "Table 1: Intra-LPIPS (diversity, higher is better), near-copy fraction and factor diversity",
    "table2": "Table 2: FID and KID (quality, lower is better), two-sample accuracy (0.5 best), precision, recall, density, "
              "coverage and in-domain fraction",
    "table3_ablation": "Table 3: ablation of DomainStudio's terms",
    "table4_shots": "Table 4: number of training images",
}


def benchmark_jobs(benchmark_dir: str | Path) -> pd.DataFrame:
    """One row per job from Snakemake's ``benchmark:`` files (logs/benchmarks/<rule>/<job>.tsv): rule, job, its wall
    seconds, and its end in Unix seconds (the file is written when the job ends, so its modification time)."""
    rows = []
    for f in sorted(Path(benchmark_dir).glob("*/*.tsv")):
        end = f.stat().st_mtime
        with open(f, newline="") as fh:
            rows += [{"rule": f.parent.name, "job": f.stem, "seconds": float(rec["s"]), "end": end}
                     for rec in csv.DictReader(fh, delimiter="\t")]
    return pd.DataFrame(rows, columns=["rule", "job", "seconds", "end"])


def stage_times(jobs: pd.DataFrame) -> pd.DataFrame:
    """Wall seconds per rule, summed over its jobs (``benchmark_jobs``)."""
    return jobs.groupby("rule").agg(jobs=("job", "count"), seconds=("seconds", "sum")).sort_values("seconds", ascending=False)


def wall_span(jobs: pd.DataFrame) -> tuple[float, float] | None:
    """(first job's start, last job's end) in Unix seconds; a job starts at end - seconds. None without jobs."""
    if jobs.empty:
        return None
    return float((jobs.end - jobs.seconds).min()), float(jobs.end.max())


def write_report(config: dict, results: str | Path, benchmark_dir: str | Path, out: str | Path) -> None:
    results = Path(results)
    world, ev = config["world"], config["evaluate"]
    c2st = {**dataclasses.asdict(TwoSampleConfig()), **ev.get("c2st", {})}  # TwoSampleConfig's defaults under params.yaml's
    lines = [f"# DomainStudio pipeline report: world `{world}`", ""]
    lines += ["## Setup", "",
              f"- data: `{config['data']['kind']}`" + (" (the embedded procedural benchmark rendered by the pipeline)" if config["data"]["kind"] == "embedded" else ""),
              f"- resolution {config['resolution']} px; domains {', '.join(config['domains'])}; shots {config['shots']}; seeds {config['seeds']}"
              + "".join(f"; seeds {b['seeds']} also for {', '.join(b['methods'])} on {', '.join(b['domains'])}"
                        for b in config.get('extra_seeds', [])),
              f"- methods: {', '.join(config['methods'])}",
              "- source model: " + (f"pre-trained here ({config['source']['train']['steps']} steps)" if config["source"]["kind"] == "pretrain" else f"`{config['source'].get('pretrained')}`"),
              f"- adaptation: {config['adapt']['train']['steps']} steps, batch {config['adapt']['train']['batch_size']}, weights {config['adapt']['weights']}",
              f"- sampling: {config['sample']['n_samples']} samples per run, DDIM {config['sample']['ddim_steps']} steps",
              f"- metrics: Intra-LPIPS backbone `{ev['backbone']}`, FID/KID backbone `{ev.get('fid_backbone', 'embedded')}`, cluster cap {ev['cluster_cap']}",
              f"- fidelity: classifier two-sample test on pixels ({c2st['n_per_side']} images a side, {c2st['epochs']} epochs; "
              f"`c2st_accuracy` 0.5: indistinguishable); the sliced Wasserstein distance of Laplacian-pyramid patches "
              f"(`swd`, x 1e3, 0 at identical distributions); precision, recall, density and coverage on the FID/KID features "
              f"(k = {ev.get('prdc_k', 5)}), one family of evidence with FID/KID",
              ""]
    if "embedded" in (ev["backbone"], ev.get("fid_backbone")):
        lines += ["> **Backbone caveat.** `embedded` numbers come from a small network trained by this pipeline on the benchmark's",
                  "> own source and reference images (never on samples). They rank methods on this benchmark; they are not on the",
                  "> scale of the paper's ImageNet-backbone numbers (LPIPS-VGG, Inception FID). Rows with `source = reported` are",
                  "> the literature's numbers on real data, shown for orientation only and never averaged with measured rows.", ""]
    for name, title in TABLE_TITLES.items():
        md = results / f"{name}.md"
        if md.exists():
            lines += [f"## {title}", "", f"CSV: `results/{name}.csv`", "", md.read_text(), ""]
    claims = results / "claims.md"
    if claims.exists():
        lines += ["## Claims of the paper, decided over seeds", "",
                  "Each DomainStudio variant against plain fine-tuning and each GAN baseline (claims), and against DPMs-ANT "
                  "(comparisons): d = variant - baseline with its 95 % Welch interval over seeds. holds / fails: the interval "
                  "lies wholly on the claimed / the other side; undecided: it straddles the boundary (more seeds: "
                  "`--configfile config/seeds3.yaml`); one seed gives no interval (docs/workflow.md, \"The claims table\").", "",
                  "CSV: `results/claims.csv`", "", claims.read_text(), ""]
    figures = sorted((results / "figures").glob("*.png"))
    if figures:
        lines += ["## Figures", ""]
        for f in figures:
            lines += [f"### {f.stem}", "", f"![{f.stem}](figures/{f.name})", ""]
    jobs = benchmark_jobs(benchmark_dir)
    if len(jobs):
        times = stage_times(jobs)
        lines += ["## Time per stage", "", "Sum of the wall time of each rule's jobs (Snakemake benchmark files; jobs may overlap).", "",
                  "| rule | jobs | minutes |", "|---|---|---|"]
        lines += [f"| {rule} | {int(r.jobs)} | {r.seconds / 60:.1f} |" for rule, r in times.iterrows()]
        lines += [f"| **total** | {int(times.jobs.sum())} | {times.seconds.sum() / 60:.1f} |", ""]
        start, end = wall_span(jobs)
        lines += [f"Wall time from the first job's start to the last job's end before this report: **{(end - start) / 60:.1f} min** "
                  f"(from the same files; it includes any pause between separate `snakemake` invocations)."]
        table1 = jobs[(jobs.rule == "report") & (jobs.job == "table1")]  # ends when the main job's last job has ended
        if len(table1):
            lines += [f"`results/table1.csv` (the main job) was complete **{(table1.end.max() - start) / 60:.1f} min** "
                      "after the first job started. In a run of everything Snakemake interleaves the other tables' jobs, so "
                      "this is later than a run of `snakemake results/table1.csv` alone (docs/performance.md)."]
        lines += [""]
    with atomic_file(out) as tmp:
        tmp.write_text("\n".join(lines))


def write_metrics_json(summary: dict, out: str | Path) -> None:
    with atomic_file(out) as tmp:
        tmp.write_text(json.dumps(summary, indent=2, sort_keys=True))
