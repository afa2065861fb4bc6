"""The evidence for sample.ddim_steps on adapted models: the main job's seed-0 diffusion runs of one domain sampled
again with other DDIM step counts and scored exactly as the main job scores them (docs/evidence.md).

    python experiments/ddim_steps.py --domain babies --steps 10 50 --out experiments/out/ddim_steps
(after `snakemake --cores all results/table1.csv`.) Per step count and method it runs the workflow's own verbs
(`domainstudio sample` with the method's own sample settings, domainstudio.params.arguments.sample_settings, but
``ddim_steps``, then `domainstudio evaluate` with the main job's evaluate settings) into ``--out``, and prints
Intra-LPIPS, near-copy fraction, FID and in-domain beside the workflow's own run (its sampler, step count and eta;
the released code's rows sample with adapt.official.sample). ``--figure`` writes the first samples of each method at
every step count as one labelled grid. ``--eta`` (default: params.yaml's ``sample.eta``) samples with another DDIM eta
at the listed step counts: 0 deterministic, 1 stochastic (DDPM-like); ``--sampler ddpm`` samples ancestrally instead
(eta does not apply). ``--n-samples`` draws fewer samples than the workflow's run (then the workflow's run is
sampled again at that count too, so that every row is scored on as many samples; the run need only be adapted). Runs already scored in ``--out``
are not repeated.

    python experiments/ddim_steps.py --domain babies --methods domainstudio-official --sampler ddpm --steps 1000 \
        --n-samples 300      # the released code's sampler on 300 samples; then the same with --sampler ddim --steps 20 50
"""
from __future__ import annotations

import json
import shutil
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import yaml

from domainstudio.params.arguments import sample_settings
from domainstudio.data.images import load_image_folder
from main_job_scoring import evaluate, main_job_runs, print_scores, run_arguments, sample_images


def label(sampler: str, steps: int, eta: float) -> str:
    if sampler == "ddpm":
        return f"DDPM {steps}"
    return f"DDIM {steps}" if eta == 0 else f"DDIM {steps}, eta {eta:g}"


def setting(cfg: dict) -> tuple[str, int, float]:
    """(sampler, steps, eta) of a sample block; eta is 0 for the ancestral sampler, where it does not apply."""
    sampler = cfg.get("sampler", "ddim")
    return sampler, int(cfg["ddim_steps"]), 0.0 if sampler == "ddpm" else float(cfg["eta"])


def sample_and_score(run: str, cfg: dict, a, params: dict) -> Path:
    """``--out``/<sampler><steps>[_eta<eta>][_n<n>]/<run>/{samples, metrics}: the workflow's sample and evaluate verbs
    with the sample block ``cfg``."""
    world, *_, seed = run.split("/")
    sampler, steps, eta = setting(cfg)
    name = f"{sampler}{steps}" + (f"_eta{eta:g}" if eta else "") + (f"_n{a.n_samples}" if a.n_samples else "")
    base = Path(a.out) / name / run
    samples, metrics = base / "samples", base / "metrics"
    if (metrics / "diversity.json").exists():
        return metrics
    shutil.rmtree(base, ignore_errors=True)
    metrics.mkdir(parents=True)
    cfg = {**cfg, "seed": int(seed.removeprefix("seed")), **({"n_samples": a.n_samples} if a.n_samples else {})}
    subprocess.run(["domainstudio", "sample", "--model", f"models/{run}", "--source-model", f"models/{world}/source",
                    "--out", str(samples), "--config-json", json.dumps(cfg), "--threads", str(a.threads)], check=True)
    evaluate(samples, metrics, run, "ddpm", params, a.threads)
    return metrics


def main() -> None:
    p = run_arguments(__doc__.splitlines()[0], ["ddpm-ft", "domainstudio", "domainstudio-paper", "dpms-ant"], "experiments/out/ddim_steps")
    p.add_argument("--steps", type=int, nargs="+", default=[10, 50])
    p.add_argument("--eta", type=float, help="DDIM eta (default: params.yaml's sample.eta)")
    p.add_argument("--sampler", choices=["ddim", "ddpm"], default="ddim", help="ddpm: ancestral sampling (eta does not apply)")
    p.add_argument("--n-samples", type=int, help="samples per run (default: the workflow's sample.n_samples)")
    a = p.parse_args()
    params = yaml.safe_load(Path(a.params).read_text())
    a.eta = params["sample"]["eta"] if a.eta is None else a.eta
    runs = main_job_runs(a, scored=not a.n_samples)   # with --n-samples, an adapted model is enough
    workflow = {run: sample_settings(params, run.split("/")[3]) for run in runs}   # each run's own sample block

    def others(own: dict) -> list[dict]:
        """The listed step counts under --sampler and --eta, leaving out the run's own setting."""
        listed = [{**own, "sampler": a.sampler, "ddim_steps": s, "eta": a.eta} for s in a.steps]
        return [cfg for cfg in listed if setting(cfg) != setting(own)]

    settings = {run: [workflow[run], *others(workflow[run])] for run in runs}

    def folder(run: str, cfg: dict) -> Path:
        own = cfg is workflow[run] and not (a.n_samples and a.n_samples != cfg["n_samples"])
        return Path(f"results/metrics/{run}") if own else sample_and_score(run, cfg, a, params)

    folders = {(run, i): folder(run, cfg) for run in runs for i, cfg in enumerate(settings[run])}
    print(f"{a.domain}, {a.shots} shots, seed {a.seed}, {a.n_samples or params['sample']['n_samples']} samples; the first "
          "row of each method is its workflow sampler")
    print_scores([(run.split("/")[3], label(*setting(cfg)), folders[run, i]) for run in runs for i, cfg in enumerate(settings[run])])
    if a.figure:
        from domainstudio.report.figures import labelled_grid

        rows, labels = [], []
        for run in runs:
            for i, cfg in enumerate(settings[run]):
                rows.append(load_image_folder(sample_images(run, folders[run, i]), params["resolution"], count=a.per_row))
                labels.append(f"{textwrap.fill(run.split('/')[3], 14)}\n{label(*setting(cfg))}")
        labelled_grid(np.concatenate(rows), labels, a.per_row, a.figure)


if __name__ == "__main__":
    main()
