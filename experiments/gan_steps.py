"""How long the GAN baselines adapt: the workflow's seed-0 GAN runs of one domain adapted again with other step
counts (or learning rate), sampled and scored exactly as the workflow scores them (docs/baselines.md).

    python experiments/gan_steps.py --domain sketches --methods tgan cdc --steps 600 1500 --figure gan_steps.png
(after `snakemake --cores all results/table1.csv --configfile config/baselines.yaml`.) Per step count and method it
runs the workflow's own verbs (`domainstudio adapt-gan` with params.yaml's gan settings but ``steps`` and ``--lr``,
`domainstudio sample-gan`, then `domainstudio evaluate` with the workflow's evaluate settings) into ``--out``, and
prints Intra-LPIPS, near-copy fraction, FID and in-domain beside the workflow's own numbers (its ``gan.adapt.steps``). ``--figure`` writes the first
samples of each method at every step count as one labelled grid, under the domain's training images. Runs already
scored in ``--out`` are not repeated.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import yaml

from domainstudio.params.arguments import EWC_FISHER, gan_adapt_config
from domainstudio.data.images import load_image_folder
from main_job_scoring import evaluate, main_job_runs, print_scores, run_arguments, sample_images


def setting(steps: int, lr: float) -> str:
    return f"steps{steps}_lr{lr:g}"


def adapt_sample_score(run: str, steps: int, lr: float, a, params: dict) -> Path:
    """``--out``/steps<steps>_lr<lr>/<run>/{model, samples, metrics}: the workflow's adapt-gan, sample-gan, evaluate."""
    world, domain, shots, method, seed = run.split("/")
    base = Path(a.out) / setting(steps, lr) / run
    model, samples, metrics = base / "model", base / "samples", base / "metrics"
    if (metrics / "diversity.json").exists():
        return metrics
    shutil.rmtree(base, ignore_errors=True)
    metrics.mkdir(parents=True)
    gan = params["gan"]
    cfg = gan_adapt_config({**gan, "adapt": {**gan["adapt"], "steps": steps, "lr": lr}}, method, seed.removeprefix("seed"))
    fisher = ["--fisher", EWC_FISHER.format(world=world, seed=seed.removeprefix("seed"))] if method == "ewc" else []
    subprocess.run(["domainstudio", "adapt-gan", "--source", f"models/{world}/source_gan", "--images",
                    f"data/{world}/{domain}/{shots}", "--shots", shots.removesuffix("shot"), "--method", method,
                    "--config-json", json.dumps(cfg), *fisher, "--out", str(model), "--threads", str(a.threads)],
                   check=True)
    subprocess.run(["domainstudio", "sample-gan", "--model", str(model), "--out", str(samples), "--n-samples",
                    str(params["sample"]["n_samples"]), "--seed", seed.removeprefix("seed"), "--batch-size",
                    str(gan.get("sample", {}).get("batch_size", 500)), "--threads", str(a.threads)], check=True)
    evaluate(samples, metrics, run, "gan", params, a.threads)
    return metrics


def main() -> None:
    p = run_arguments(__doc__.splitlines()[0], ["tgan", "freezed", "ewc", "cdc"], "experiments/out/gan_steps")
    p.add_argument("--steps", type=int, nargs="+", default=[600, 1500])
    p.add_argument("--lr", type=float, help="the adaptation learning rate (default: params.yaml's gan.adapt.lr)")
    a = p.parse_args()
    params = yaml.safe_load(Path(a.params).read_text())
    main_steps, main_lr = params["gan"]["adapt"]["steps"], params["gan"]["adapt"]["lr"]
    lr = main_lr if a.lr is None else a.lr
    runs = main_job_runs(a)

    def main_job(s: int) -> bool:
        return s == main_steps and lr == main_lr

    steps = sorted(set(a.steps) | {main_steps})
    folders = {(run, s): Path(f"results/metrics/{run}") if main_job(s) else adapt_sample_score(run, s, lr, a, params)
               for run in runs for s in steps}
    print(f"{a.domain}, {a.shots} shots, seed {a.seed}; GAN adaptation steps {steps}, lr {lr:g} "
          f"(the workflow: {main_steps} steps, lr {main_lr:g})")
    print_scores([(run.split("/")[3], s, folders[run, s]) for run in runs for s in steps])
    if a.figure:
        from domainstudio.report.figures import labelled_grid

        rows = [load_image_folder(Path(f"data/{a.world}/{a.domain}/{a.shots}shot"), params["resolution"], count=a.per_row)]
        labels = [f"{a.domain}:\ntrain"]
        for run in runs:
            for s in steps:
                rows.append(load_image_folder(sample_images(run, folders[run, s]), params["resolution"], count=a.per_row))
                labels.append(f"{run.split('/')[3]}\n{s} steps" + ("" if lr == main_lr else f"\nlr {lr:g}"))
        labelled_grid(np.concatenate(rows), labels, a.per_row, a.figure)


if __name__ == "__main__":
    main()
