"""The measurement behind gan.methods.ewc.weight: lambda such that the EWC penalty of TGAN's end point is about
the size of TGAN's final generator loss (docs/baselines.md, "How the weights are set").

    python experiments/ewc_weight.py [--runs <pattern>]
(after `snakemake --cores all results/table1.csv --configfile config/baselines.yaml` has adapted TGAN; `--runs`
points at other TGAN runs, e.g. experiments/gan_steps.py's at another step count:
experiments/out/gan_steps/steps600_lr0.002/{world}/{domain}/{shots}shot/tgan/seed{seed}/model.)
Per domain it prints TGAN's final generator loss (mean of the last quarter of train_log.csv), the Fisher penalty
sum_i F_i (theta_i - theta_S,i)^2 of TGAN's weights under the source GAN's Fisher (gan.methods.ewc: fisher,
fisher_batches, fisher_batch_size), and their ratio: the lambda that makes the two equal. The weight is set to the
median of those ratios, rounded.
"""
from __future__ import annotations

import argparse
import csv
import statistics
from pathlib import Path

import torch
import yaml

from domainstudio.gan.artifact import load_gan
from domainstudio.gan.losses import ewc_penalty
from domainstudio.gan.methods import GanMethodsConfig, source_fisher


def final_generator_loss(log_csv: Path) -> float:
    with open(log_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    tail = rows[-max(1, len(rows) // 4):]
    return statistics.fmean(float(r["g_loss"]) for r in tail)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--world", default="faces"); p.add_argument("--shots", type=int, default=10)
    p.add_argument("--domains", nargs="+", default=["babies", "sunglasses", "sketches", "modigliani"])
    p.add_argument("--params", default="params.yaml"); p.add_argument("--seed", type=int, default=0)
    p.add_argument("--runs", default="models/{world}/{domain}/{shots}shot/tgan/seed{seed}",
                   help="folder of a TGAN run, with {world}, {domain}, {shots} and {seed} filled in")
    a = p.parse_args()
    ewc = yaml.safe_load(Path(a.params).read_text())["gan"]["methods"]["ewc"]
    torch.set_num_threads(1)
    generator, discriminator = load_gan(f"models/{a.world}/source_gan")
    fisher = source_fisher(generator, discriminator, GanMethodsConfig.from_dict({"ewc": ewc}).ewc, a.seed)  # as rule ewc_fisher
    source = {n: q.detach().clone() for n, q in generator.named_parameters()}
    print(f"Fisher ({ewc.get('fisher', 'per_sample')}): sum {sum(f.sum().item() for f in fisher.values()):.4g}")
    print("domain        tgan g_loss   penalty(tgan)   lambda = g_loss / penalty")
    ratios = []
    for domain in a.domains:
        run = Path(a.runs.format(world=a.world, domain=domain, shots=a.shots, seed=a.seed))
        adapted, _ = load_gan(run)
        with torch.no_grad():
            penalty = ewc_penalty(adapted, source, fisher).item()
        loss = final_generator_loss(run / "train_log.csv")
        ratios.append(loss / penalty)
        print(f"{domain:12s}  {loss:11.4f}   {penalty:13.4g}   {ratios[-1]:10.4g}")
    print(f"median lambda: {statistics.median(ratios):.4g} (gan.methods.ewc.weight: {ewc['weight']})")


if __name__ == "__main__":
    main()
