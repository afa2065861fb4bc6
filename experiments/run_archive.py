"""Keep the records of a study that outlives one machine: finished runs copied into a committed folder.

    python experiments/run_archive.py add --archive studies/seeds_decide results/metrics/faces/*/10shot/*/seed*
    python experiments/run_archive.py status --archive studies/seeds_decide --configfile config/seeds3.yaml config/seeds_decide.yaml
    python experiments/run_archive.py run --archive studies/seeds_decide --workspace ../study --configfile config/seeds3.yaml config/seeds_decide.yaml
    domainstudio claims --out results/claims_seeds_decide.csv studies/seeds_decide/runs/faces/*/10shot/*/seed*

A study of a few hundred runs (config/seeds_decide.yaml: seeds 0-7 of the undecided claims' cells) takes longer than a
workspace lives. ``add`` copies each finished run's records (the four metric files of results/metrics/<run>/, the
adaptation.json of models/<run>/ and the sampling.json of samples/<run>/) to <archive>/runs/<run>/, with
provenance.json: the commit the workspace ran (its tracked files must be unchanged), the CPU (bf16 rounding makes a
DomainStudio run reproduce to the digit only on the same kind of CPU; docs/performance.md), torch and the date. A run
already archived is left as it is; one whose metrics now differ is reported, not overwritten. ``status`` lists the
runs the configuration plans (the workflow's rule of params.yaml plus overlays, cell_seeds) that the archive lacks, as
the Snakemake targets that make them; ``run`` makes them in a workspace (a worktree at the study's commit, with its
own package), a batch of runs per Snakemake command so that a workspace that ends leaves whole runs, archiving each
batch. The tables' readers (report/tables.py: run_records) read <archive>/runs/ as they read results/metrics/, so
``domainstudio claims`` and experiments/seeds_summary.py (``--results``) run on it.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import torch
import yaml

from domainstudio.devices import NATIVE_BF16_CPU_FLAGS, cpu_flags, cpuinfo_field
from domainstudio.params.arguments import cell_seeds
from domainstudio.release.build import git_commit

METRICS = ("intra_lpips", "fid", "fidelity", "diversity")
RECORDS = {"models": "adaptation.json", "samples": "sampling.json"}  # the run's other records, by root


def run_key(metrics_dir: Path) -> Path:
    """<world>/<domain>/<K>shot/<method>/seed<s> of a results/metrics/ run folder."""
    parts = metrics_dir.parts[-5:]
    if len(parts) < 5 or not parts[2].endswith("shot") or not parts[4].startswith("seed"):
        raise SystemExit(f"{metrics_dir}: not a run folder (results/metrics/<world>/<domain>/<K>shot/<method>/seed<s>)")
    return Path(*parts)


def workspace_commit(workspace: Path) -> str:
    """The commit the workspace runs; refused if a tracked file differs from it (the run would name the wrong code)."""
    commit = git_commit(workspace)
    if commit == "unknown" or commit.endswith("-dirty"):
        raise SystemExit(f"{workspace}: not a git checkout, or tracked files differ from its commit ({commit}; git status)")
    return commit


def cpu() -> str:
    """The CPU model and whether it computes bf16 natively (AMX-BF16, AVX512-BF16): what a run's digits depend on."""
    model = cpuinfo_field("model name") or platform.processor()
    return model + "".join(f", {f}" for f in NATIVE_BF16_CPU_FLAGS if f in cpu_flags())


def add(archive: Path, run_dirs: list[Path], workspace: Path) -> None:
    commit = workspace_commit(workspace)
    provenance = {"commit": commit, "cpu": cpu(), "torch": torch.__version__,
                  "archived": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    added = kept = 0
    for d in run_dirs:
        key = run_key(d)
        missing = [f"{d}/{m}.json" for m in METRICS if not (d / f"{m}.json").exists()]
        records = {name: workspace / root / key / name for root, name in RECORDS.items()}
        missing += [str(p) for p in records.values() if not p.exists()]
        if missing:
            print(f"skipped {key}: not finished ({', '.join(missing)} missing)", file=sys.stderr)
            continue
        dest = archive / "runs" / key
        if dest.exists():
            changed = [m for m in METRICS if json.loads((d / f"{m}.json").read_text()) != json.loads((dest / f"{m}.json").read_text())]
            if changed:
                old = json.loads((dest / "provenance.json").read_text())
                print(f"{key}: archived from {old['commit'][:7]} on {old['cpu']}; {', '.join(changed)} differ here; kept the archived run",
                      file=sys.stderr)
            kept += 1
            continue
        tmp = dest.with_name(dest.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for m in METRICS:
            shutil.copy2(d / f"{m}.json", tmp / f"{m}.json")
        for name, src in records.items():
            shutil.copy2(src, tmp / name)
        (tmp / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")
        tmp.rename(dest)
        added += 1
    print(f"{added} runs added, {kept} already archived, at {commit[:7]} on {provenance['cpu']}")


def planned_runs(configfiles: list[Path], root: Path) -> list[Path]:
    """Every run of tables 1 and 2 under params.yaml and the overlays, in the order the workflow's runs() lists them."""
    from snakemake.utils import update_config

    config = yaml.safe_load((root / "params.yaml").read_text())
    for f in configfiles:
        update_config(config, yaml.safe_load((root / f).read_text()))  # an overlay path is relative to the root
    return [Path(config["world"], d, f"{k}shot", m, f"seed{s}")
            for d in config["domains"] for k in config["shots"] for m in config["methods"] for s in cell_seeds(config, d, m)]


def archived(archive: Path, key: Path) -> bool:
    return (archive / "runs" / key / "provenance.json").exists()


def status(archive: Path, configfiles: list[Path], root: Path) -> None:
    planned = planned_runs(configfiles, root)
    missing = [k for k in planned if not archived(archive, k)]
    extra = sorted({p.parent.relative_to(archive / "runs") for p in (archive / "runs").rglob("provenance.json")} - set(planned))
    print(f"# {len(planned) - len(missing)} of {len(planned)} planned runs archived; {len(missing)} to run"
          + (f"; {len(extra)} archived runs outside the plan" if extra else ""))
    for k in missing:
        print(f"results/metrics/{k.as_posix()}/intra_lpips.json")


def run_batches(archive: Path, configfiles: list[Path], workspace: Path, batch: int, cores: int) -> None:
    """Run the missing runs in the workspace ``batch`` at a time (each Snakemake command ends with whole runs) with
    the workspace's own package, archiving each batch as it ends; stops at the first command that fails."""
    env = {**os.environ, "PYTHONPATH": str((workspace / "src").resolve())}
    planned = planned_runs(configfiles, workspace)
    while missing := [k for k in planned if not archived(archive, k)][:batch]:
        targets = [f"results/metrics/{k.as_posix()}/intra_lpips.json" for k in missing]
        cmd = ["snakemake", "--cores", str(cores), "--rerun-incomplete", *targets, "--configfile", *map(str, configfiles)]
        print(f"# {datetime.now(timezone.utc):%Y-%m-%dT%H:%M:%SZ} {len(missing)} runs: {' '.join(map(str, missing))}", flush=True)
        if subprocess.run(cmd, cwd=workspace, env=env).returncode != 0:
            raise SystemExit(f"snakemake failed in {workspace}: {' '.join(cmd)}")
        add(archive, [workspace / "results" / "metrics" / k for k in missing], workspace)
        if unarchived := [k.as_posix() for k in missing if not archived(archive, k)]:
            raise SystemExit(f"snakemake ended without these runs' records (see above): {' '.join(unarchived)}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="verb", required=True)
    a_add = sub.add_parser("add", help="archive finished runs")
    a_add.add_argument("--archive", type=Path, required=True)
    a_add.add_argument("--workspace", type=Path, default=Path("."), help="the workflow's root the runs were made in")
    a_add.add_argument("runs", type=Path, nargs="+", help="results/metrics/<world>/<domain>/<K>shot/<method>/seed<s> folders")
    a_status = sub.add_parser("status", help="the planned runs the archive lacks, as Snakemake targets")
    a_status.add_argument("--archive", type=Path, required=True)
    a_status.add_argument("--root", type=Path, default=Path("."), help="the workflow's root (its params.yaml)")
    a_status.add_argument("--configfile", type=Path, nargs="*", default=[], help="the overlays of the study's command")
    a_run = sub.add_parser("run", help="run the missing runs in batches, archiving each batch")
    a_run.add_argument("--archive", type=Path, required=True)
    a_run.add_argument("--workspace", type=Path, default=Path("."), help="the workflow's root at the study's commit")
    a_run.add_argument("--configfile", type=Path, nargs="*", default=[], help="the overlays, relative to the workspace")
    a_run.add_argument("--batch", type=int, default=4, help="runs per Snakemake command")
    a_run.add_argument("--cores", type=int, default=2)
    a = p.parse_args()
    if a.verb == "add":
        add(a.archive, a.runs, a.workspace)
    elif a.verb == "status":
        status(a.archive, a.configfile, a.root)
    else:
        run_batches(a.archive.resolve(), a.configfile, a.workspace, a.batch, a.cores)


if __name__ == "__main__":
    main()
