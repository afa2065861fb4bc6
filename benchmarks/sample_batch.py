"""Sampling cost per image against the batch size, measured interleaved in one run.

    python benchmarks/sample_batch.py [--batches 50 125 250 500] [--images 500] [--repeats 5] [--threads 1]

Why: ``sample.batch_size`` does not change the samples (the initial noise of sample i depends only on the seed and
i; sampling.py), only the speed. On this project's 32 px UNet in bf16 on one CPU thread, batches of ~100-125 keep
the activations in the core's cache and cost less per image than 250. This prints the median milliseconds per
image of one UNet forward pass (the unit of a DDIM step) for each batch size and its ratio to the first.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import yaml

from domainstudio.devices import autocast
from domainstudio.models.source import UNetConfig, build_unet


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", type=int, nargs="+", default=[50, 125, 250, 500])
    p.add_argument("--images", type=int, default=500); p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1); p.add_argument("--precision", default="bf16")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    params = yaml.safe_load(open("params.yaml"))
    torch.manual_seed(0)
    unet = build_unet(UNetConfig(**params["source"]["unet"]), params["resolution"]).eval()
    res, device = unet.config.sample_size, torch.device("cpu")
    times = {b: [] for b in a.batches}
    for i in range(a.repeats + 1):
        for b in a.batches:
            x, t = torch.randn(b, 3, res, res), torch.full((b,), 500)
            t0 = time.perf_counter()
            for _ in range(max(1, a.images // b)):
                with torch.no_grad(), autocast(device, a.precision):
                    unet(x, t)
            if i:  # the first round warms up
                times[b].append((time.perf_counter() - t0) / (max(1, a.images // b) * b) * 1000)
    print(f"UNet forward, {res} px, {a.precision}, {a.threads} thread(s); median ms per image over {a.repeats} rounds")
    first = statistics.median(times[a.batches[0]])
    for b, ts in times.items():
        print(f"  batch {b:4d}: {statistics.median(ts):.3f} ms/image  ({statistics.median(ts) / first:.3f}x batch {a.batches[0]})")


if __name__ == "__main__":
    main()
