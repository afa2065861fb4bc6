"""Throughput of training steps: one job with N threads against N one-thread jobs side by side.

    python benchmarks/threads.py [--batch 10] [--steps 20] [--cores 2]

Why: the workflow gives its many small jobs (adaptations, sampling, metrics) one thread each and lets Snakemake
run them side by side (workflow/rules/common.smk). On this project's 32 px UNet, intra-op threading scales poorly,
so N one-thread processes do more work per second than one N-thread process. This prints, measured in one run,
the steps per second of (a) one process with 1 thread, (b) one process with ``--cores`` threads, (c) ``--cores``
one-thread processes at once, and the ratios b/a and c/a.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import time

import torch
import yaml


def _steps_per_second(threads: int, batch: int, steps: int, start=None) -> float:
    from domainstudio.devices import autocast
    from domainstudio.models.source import UNetConfig, build_unet

    torch.set_num_threads(threads)
    params = yaml.safe_load(open("params.yaml"))
    torch.manual_seed(0)
    unet = build_unet(UNetConfig(**params["source"]["unet"]), params["resolution"])
    opt = torch.optim.AdamW(unet.parameters(), 1e-4)
    x = torch.randn(batch, 3, params["resolution"], params["resolution"])
    t = torch.randint(0, 1000, (batch,))

    def step():
        with autocast(torch.device("cpu"), params["adapt"]["train"]["precision"]):
            loss = (unet(x, t).sample.float() - x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(3):  # warm-up
        step()
    if start is not None:
        start.wait()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return 1.0 / statistics.median(times)


def _worker(args):
    threads, batch, steps, start = args
    return _steps_per_second(threads, batch, steps, start)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=10)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--cores", type=int, default=2)
    a = p.parse_args()
    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        one = pool.apply(_worker, ((1, a.batch, a.steps, None),))
        many_threads = pool.apply(_worker, ((a.cores, a.batch, a.steps, None),))
    with ctx.Manager() as manager:
        start = manager.Barrier(a.cores)
        with ctx.Pool(a.cores) as pool:
            side_by_side = sum(pool.map(_worker, [(1, a.batch, a.steps, start)] * a.cores))
    print(f"batch {a.batch}, {a.steps} steps each, steps/s: 1 thread {one:.2f}, {a.cores} threads {many_threads:.2f}, "
          f"{a.cores} x 1-thread jobs {side_by_side:.2f}")
    print(f"throughput over 1 thread: one {a.cores}-thread job {many_threads / one:.2f}x, "
          f"{a.cores} one-thread jobs {side_by_side / one:.2f}x")


if __name__ == "__main__":
    main()
