"""Scoring an experiment's samples exactly as the main job scores a run: the workflow's ``domainstudio evaluate``
verb with params.yaml's evaluate settings and the main job's reference statistics and metric backbone. Shared by
the experiments that re-sample or re-adapt the main job's runs (ddim_steps.py, gan_steps.py)."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

from domainstudio.params.arguments import evaluate_arguments, needs_metric_backbone


def scores(metrics: Path) -> dict:
    """Intra-LPIPS, FID, fidelity (when scored: older folders lack it) and factor-diversity fields of one metrics
    folder, merged."""
    out = {}
    for name in ("intra_lpips", "fid", "fidelity", "diversity"):
        if name != "fidelity" or (metrics / f"{name}.json").exists():
            out.update(json.loads((metrics / f"{name}.json").read_text()))
    return out


def evaluate(samples: Path, metrics: Path, run: str, family: str, params: dict, threads: int = 1) -> None:
    """``metrics``/{intra_lpips,fid,fidelity,diversity}.json of ``samples``, for the main job's run ``run``
    (world/domain/<K>shot/method/seed<s>) of method family ``family`` (ddpm or gan): rule evaluate's command
    (domainstudio.params.arguments.evaluate_arguments) on other samples."""
    world, domain, shots, method, seed = run.split("/")
    ev, embedded = params["evaluate"], params["data"]["kind"] == "embedded"
    info = {"world": world, "domain": domain, "shots": shots.removesuffix("shot"), "method": method, "family": family,
            "seed": seed.removeprefix("seed")}
    args = evaluate_arguments(ev, params["resolution"], info, samples=str(samples), train=f"data/{world}/{domain}/{shots}",
                              reference=f"data/{world}/{domain}/reference",
                              reference_stats=f"results/reference_stats/{world}/{domain}/{ev.get('fid_backbone', 'embedded')}.npz",
                              metric_backbone=f"models/{world}/metric_backbone" if needs_metric_backbone(ev, embedded) else None, out=str(metrics),
                              diversity=embedded, threads=threads)
    subprocess.run(["domainstudio", "evaluate", *args], check=True)


def run_arguments(description: str, methods: list[str], out: str):
    """The command-line arguments naming the main job's runs to revisit: --domain, --world, --shots, --seed,
    --methods, plus --params, --threads, --out, --figure and --per-row."""
    import argparse

    p = argparse.ArgumentParser(description=description)
    p.add_argument("--domain", required=True); p.add_argument("--world", default="faces")
    p.add_argument("--shots", type=int, default=10); p.add_argument("--seed", type=int, default=0)
    p.add_argument("--methods", nargs="+", default=methods)
    p.add_argument("--params", default="params.yaml"); p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=out); p.add_argument("--figure")
    p.add_argument("--per-row", type=int, default=10)
    return p


def main_job_runs(a, scored: bool = True) -> list[str]:
    """The runs named by :func:`run_arguments`' arguments, checked to exist: scored by the workflow, or with
    ``scored=False`` only adapted (models/<run>)."""
    runs = [f"{a.world}/{a.domain}/{a.shots}shot/{m}/seed{a.seed}" for m in a.methods]
    for run in runs:
        if not scored and Path(f"models/{run}").is_dir():
            continue
        if not Path(f"results/metrics/{run}/diversity.json").exists():
            raise SystemExit(f"results/metrics/{run}/: run the workflow first (snakemake --cores all results/table1.csv; "
                             "dpms-ant and the GAN baselines with --configfile config/baselines.yaml)")
    return runs


def print_scores(rows: list[tuple[str, object, Path]]) -> None:
    """One line per (method, setting, metrics folder): Intra-LPIPS, near-copy fraction, FID, in-domain, and (when
    scored) the two-sample accuracy and SWD."""
    width = max(len(method) for method, _, _ in rows)
    column = max(5, *(len(str(value)) for _, value, _ in rows))
    print(f"{'method':{width}s}  {'steps':>{column}s}  Intra-LPIPS  near-copy   FID   in-domain   c2st     swd")
    for method, value, folder in rows:
        m = scores(folder)
        fidelity = f"  {m['c2st_accuracy']:5.3f}  {m['swd']:6.1f}" if "swd" in m else ""
        print(f"{method:{width}s}  {str(value):>{column}s}  {m['intra_lpips']:11.3f}  {m['near_copy_fraction']:9.2f}  "
              f"{m['fid']:5.1f}  {m['in_domain']:9.2f}{fidelity}")


def sample_images(run: str, metrics: Path) -> Path:
    """The images behind a metrics folder: the main job's samples/<run>/images for its own results/metrics/<run>, an
    experiment's <setting>/<run>/samples/images otherwise."""
    return Path(f"samples/{run}/images") if metrics == Path(f"results/metrics/{run}") else metrics.parent / "samples" / "images"
