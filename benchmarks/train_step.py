"""The trainer's two CPU speed choices, side by side: the math attention kernel and the fused AdamW.

    python benchmarks/train_step.py [--repeats 20] [--threads 1] [--precision bf16]

Why: the UNet's mid-block self-attention (8 x 8 tokens at 32 px) is a tiny part of the FLOPs, yet in a profile of
a bf16 training step the CPU flash-attention kernel's backward took ~11 % of the time; and the default (per-tensor
loop) AdamW took ~9 % of a batch-10 step. The trainer therefore picks the math kernel on the CPU
(``domainstudio.devices.attention_kernel``) and the fused AdamW. This prints, for the three kinds of training step
of the main job (source pre-training at batch 32, DDPM-FT and DomainStudio adaptation at batch 10), the median
step time of (a) PyTorch's defaults, (b) the math kernel, (c) the math kernel and the fused AdamW (the trainer),
measured interleaved in one run, and the ratios b/a and c/a.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import statistics
import time

import torch
import yaml

from domainstudio.adapt.methods import build_objective, method_weights
from domainstudio.devices import attention_kernel, autocast
from domainstudio.models.source import SchedulerConfig, UNetConfig, build_scheduler, build_unet


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=20); p.add_argument("--threads", type=int, default=1)
    p.add_argument("--precision", default="bf16")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    params = yaml.safe_load(open("params.yaml"))
    torch.manual_seed(0)
    unet = build_unet(UNetConfig(**params["source"]["unet"]), params["resolution"])
    sched = build_scheduler(SchedulerConfig(**params["source"]["scheduler"]))
    res, device = unet.config.sample_size, torch.device("cpu")
    cases = {"pretrain (batch 32)": ("ddpm-ft", 32), "ddpm-ft (batch 10)": ("ddpm-ft", 10),
             "domainstudio (batch 10)": ("domainstudio", 10)}
    variants = {"defaults": (contextlib.nullcontext, False), "math": (lambda: attention_kernel(device), False),
                "math+fused": (lambda: attention_kernel(device), True)}
    print(f"UNet {sum(p.numel() for p in unet.parameters()) / 1e6:.2f} M params, {res} px, {a.precision}, "
          f"{a.threads} thread(s), {a.repeats} interleaved steps each; median ms per step")
    for case, (method, batch) in cases.items():
        x0 = torch.rand(batch, 3, res, res) * 2 - 1
        objective = build_objective(method_weights(method, params["adapt"]["weights"]), unet, sched, batch,
                                    params["adapt"].get("options"))
        runs = {}
        for name, (_, fused) in variants.items():
            model = copy.deepcopy(unet).train()
            runs[name] = (model, torch.optim.AdamW(model.parameters(), 1e-5, fused=fused), torch.Generator().manual_seed(0))
        times = {name: [] for name in variants}
        for i in range(a.repeats + 3):
            for name, (model, opt, gen) in runs.items():
                t0 = time.perf_counter()
                with variants[name][0](), autocast(device, a.precision):
                    loss, _ = objective(model, x0, gen)
                opt.zero_grad(); loss.backward(); opt.step()
                if i >= 3:  # warm-up
                    times[name].append(time.perf_counter() - t0)
        med = {name: statistics.median(ts) * 1000 for name, ts in times.items()}
        print(f"  {case:24s} " + "  ".join(f"{n} {m:6.1f}" for n, m in med.items()) +
              f"   math/defaults {med['math'] / med['defaults']:.3f}  math+fused/defaults {med['math+fused'] / med['defaults']:.3f}")


if __name__ == "__main__":
    main()
