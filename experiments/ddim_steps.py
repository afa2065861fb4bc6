"""The evidence for sample.ddim_steps on adapted models: the main job's seed-0 diffusion runs of one domain sampled
again with other DDIM step counts and scored exactly as the main job scores them (docs/evidence.md).

    python experiments/ddim_steps.py --domain babies --steps 10 50 --out experiments/out/ddim_steps
(after `snakemake --cores all results/table1.csv`.) Per step count and method it runs the workflow's own verbs
(`domainstudio sample` with params.yaml's sample settings but ``ddim_steps``, then `domainstudio evaluate` with
the main job's evaluate settings) into ``--out``, and prints Intra-LPIPS, near-copy fraction, FID and in-domain beside
the main job's own numbers (its ``sample.ddim_steps``). ``--figure`` writes the first samples of each method at
every step count as one labelled grid. ``--eta`` (default: params.yaml's ``sample.eta``) samples with another DDIM eta
at the listed step counts: 0 deterministic, 1 stochastic (DDPM-like). Runs already scored in ``--out`` are not
repeated.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import yaml

from domainstudio.data.images import load_image_folder
from main_job_scoring import evaluate, main_job_runs, print_scores, run_arguments, sample_images


def label(steps: int, eta: float) -> str:
    return f"DDIM {steps}" if eta == 0 else f"DDIM {steps}, eta {eta:g}"


def sample_and_score(run: str, steps: int, a, params: dict) -> Path:
    """``--out``/ddim<steps>[_eta<eta>]/<run>/{samples, metrics}: the workflow's sample and evaluate verbs."""
    world, *_, seed = run.split("/")
    base = Path(a.out) / (f"ddim{steps}" + (f"_eta{a.eta:g}" if a.eta else "")) / run
    samples, metrics = base / "samples", base / "metrics"
    if (metrics / "diversity.json").exists():
        return metrics
    shutil.rmtree(base, ignore_errors=True)
    metrics.mkdir(parents=True)
    cfg = {**params["sample"], "ddim_steps": steps, "eta": a.eta, "seed": int(seed.removeprefix("seed"))}
    subprocess.run(["domainstudio", "sample", "--model", f"models/{run}", "--source-model", f"models/{world}/source",
                    "--out", str(samples), "--config-json", json.dumps(cfg), "--threads", str(a.threads)], check=True)
    evaluate(samples, metrics, run, "ddpm", params, a.threads)
    return metrics


def main() -> None:
    p = run_arguments(__doc__.splitlines()[0], ["ddpm-ft", "domainstudio", "domainstudio-paper", "dpms-ant"], "experiments/out/ddim_steps")
    p.add_argument("--steps", type=int, nargs="+", default=[10, 50])
    p.add_argument("--eta", type=float, help="DDIM eta (default: params.yaml's sample.eta)")
    a = p.parse_args()
    params = yaml.safe_load(Path(a.params).read_text())
    main_steps, main_eta = params["sample"]["ddim_steps"], params["sample"]["eta"]
    a.eta = main_eta if a.eta is None else a.eta
    runs = main_job_runs(a)

    def main_job(s: int) -> bool:
        return s == main_steps and a.eta == main_eta

    steps = sorted(set(a.steps) | {main_steps})
    folders = {(run, s): Path(f"results/metrics/{run}") if main_job(s) else sample_and_score(run, s, a, params)
               for run in runs for s in steps}
    print(f"{a.domain}, {a.shots} shots, seed {a.seed}; DDIM steps {steps}, eta {a.eta:g} "
          f"(the main job: {label(main_steps, main_eta)})")
    print_scores([(run.split("/")[3], s, folders[run, s]) for run in runs for s in steps])
    if a.figure:
        from domainstudio.report.figures import labelled_grid

        rows, labels = [], []
        for run in runs:
            for s in steps:
                rows.append(load_image_folder(sample_images(run, folders[run, s]), params["resolution"], count=a.per_row))
                labels.append(f"{textwrap.fill(run.split('/')[3], 14)}\n{label(s, main_eta if main_job(s) else a.eta)}")
        labelled_grid(np.concatenate(rows), labels, a.per_row, a.figure)


if __name__ == "__main__":
    main()
