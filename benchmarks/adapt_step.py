"""Cost of one DomainStudio and one DPMs-ANT training step over one DDPM-FT step: same UNet, side by side.

    python benchmarks/adapt_step.py [--model models/faces/source] [--batch 10] [--repeats 20] [--precision bf16]
    python benchmarks/adapt_step.py --against-unet '{"block_out_channels": [32, 64, 64]}'

Without --model it builds the default UNet of params.yaml with random weights (the cost does not depend on them).
Steps of the two methods are interleaved so that machine noise hits both alike; the ratio of medians is printed.
dpms-ant steps use its own batch (adapt.ant.train.batch_size); the cost per run multiplies each method's median
step by its configured steps (adapt.train.steps, adapt.ant.train.steps). ``--against-unet`` (a source.unet block as JSON, over params.yaml's) adds that UNet's DomainStudio step to the same
interleaved loop and prints the cost of the model's DomainStudio step relative to it (the size budget of a source model).
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import time

import torch
from common import source_model

from domainstudio.adapt import ant
from domainstudio.adapt.methods import build_objective, method_weights
from domainstudio.devices import autocast
from domainstudio.models.source import UNetConfig, build_unet


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model"); p.add_argument("--batch", type=int, default=10); p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--precision", default="bf16"); p.add_argument("--threads", type=int, default=2)
    p.add_argument("--against-unet", help="a source.unet block as JSON: also time its DomainStudio step, print the ratio")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    unet, sched, params = source_model(a.model)
    weights = params["adapt"]["weights"]
    res = unet.config.sample_size
    x0 = torch.rand(a.batch, 3, res, res) * 2 - 1
    methods = {}
    cases = [("ddpm-ft", "ddpm-ft", unet), ("domainstudio", "domainstudio", unet)]
    if a.against_unet:
        torch.manual_seed(0)
        other = build_unet(UNetConfig(**{**params["source"]["unet"], **json.loads(a.against_unet)}), res)
        cases.append(("domainstudio (against)", "domainstudio", other))
    for name, method, model_unet in cases:
        model = copy.deepcopy(model_unet).train()
        w = method_weights(method, weights)
        objective = build_objective(w, model_unet, sched, a.batch, params["adapt"].get("options"))
        methods[name] = (model, objective, torch.optim.AdamW(model.parameters(), 1e-5), torch.Generator().manual_seed(0))
    ant_cfg = params["adapt"]["ant"]
    ant_batch = ant_cfg["train"]["batch_size"]
    model = copy.deepcopy(unet)
    images = (torch.rand(ant_batch, res, res, 3) * 255).to(torch.uint8).numpy()
    blocks = {**{k: v for k, v in ant_cfg.items() if k != "train"}, "classifier": {**ant_cfg["classifier"], "steps": 1}}
    objective, _ = ant.prepare(model, sched, images, images, blocks, seed=0)  # the classifier's quality does not change the cost
    model.train()
    methods["dpms-ant"] = (model, objective, torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], 1e-5),
                           torch.Generator().manual_seed(0))
    batches = {name: x0[:ant_batch] if name == "dpms-ant" else x0 for name in methods}
    times = {name: [] for name in methods}
    device = torch.device("cpu")
    for i in range(a.repeats + 3):
        for name, (model, objective, opt, gen) in methods.items():
            t0 = time.perf_counter()
            with autocast(device, a.precision):
                loss, _ = objective(model, batches[name], gen)
            opt.zero_grad(); loss.backward(); opt.step()
            if i >= 3:  # warm-up
                times[name].append(time.perf_counter() - t0)
    med = {name: statistics.median(ts) for name, ts in times.items()}
    print(f"UNet {sum(p.numel() for p in unet.parameters())/1e6:.2f} M params, {res} px, batch {a.batch}, {a.precision}, "
          f"{a.threads} threads, {a.repeats} interleaved steps each")
    for name, m in med.items():
        print(f"  {name:13s} median step {m*1000:7.1f} ms")
    print(f"ratio domainstudio / ddpm-ft: {med['domainstudio'] / med['ddpm-ft']:.2f}x")
    steps = {"domainstudio": params["adapt"]["train"]["steps"], "dpms-ant": ant_cfg["train"]["steps"]}
    print(f"ratio dpms-ant (batch {ant_batch}) / domainstudio (batch {a.batch}) per step: {med['dpms-ant'] / med['domainstudio']:.2f}x; "
          f"per run ({steps['dpms-ant']} vs {steps['domainstudio']} steps): "
          f"{med['dpms-ant'] * steps['dpms-ant'] / (med['domainstudio'] * steps['domainstudio']):.2f}x")
    if a.against_unet:
        other = methods["domainstudio (against)"][0]
        print(f"against UNet {sum(p.numel() for p in other.parameters()) / 1e6:.2f} M params {a.against_unet}: "
              f"domainstudio step {med['domainstudio'] / med['domainstudio (against)']:.2f}x its")


if __name__ == "__main__":
    main()
