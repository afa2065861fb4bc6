"""bf16 vs fp32 on the machine it runs on: what ``precision: auto`` would pick here, and whether it is right.

    python benchmarks/precision.py [--repeats 10] [--threads 1] [--model releases/faces/32px/ddpm]

Prints the CPU's bf16 flags, the choice of ``precision: auto``, the GEMM throughput of both precisions, and the median
time of the main job's three kinds of step (source pre-training at batch 32, DDPM-FT and DomainStudio adaptation at
batch 10) and of a 125-image DDIM step, bf16 and fp32 interleaved in one run so that machine noise hits both alike.
On a CPU without AVX512-BF16 or AMX, autocast emulates bf16 and a step takes longer than in fp32; ``auto`` then
picks fp32.
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
from common import source_model

from domainstudio.adapt.methods import build_objective, method_weights
from domainstudio.devices import NATIVE_BF16_CPU_FLAGS, attention_kernel, autocast, cpu_flags, resolve_precision


def gemm_gflops(dtype: torch.dtype, n: int = 1024, repeats: int = 10) -> float:
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    a @ b
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - t0) / 1e9


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=10); p.add_argument("--threads", type=int, default=1)
    p.add_argument("--model", help="a source model folder (default: params.yaml's source.unet, random weights)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    unet, sched, params = source_model(a.model)
    device, res = torch.device("cpu"), unet.config.sample_size
    flags = sorted(set(NATIVE_BF16_CPU_FLAGS) & cpu_flags())
    print(f"CPU bf16 flags: {flags or 'none'}; precision: auto -> {resolve_precision(device, 'auto')}; {a.threads} thread(s)")
    print(f"GEMM 1024^2: fp32 {gemm_gflops(torch.float32):.0f} GFLOP/s, bf16 {gemm_gflops(torch.bfloat16):.0f} GFLOP/s")

    cases = {"pretrain (batch 32)": ("ddpm-ft", 32), "ddpm-ft (batch 10)": ("ddpm-ft", 10), "domainstudio (batch 10)": ("domainstudio", 10)}
    print(f"UNet {sum(p.numel() for p in unet.parameters()) / 1e6:.2f} M params, {res} px; median ms, {a.repeats} interleaved repeats")
    for case, (method, batch) in cases.items():
        x0 = torch.rand(batch, 3, res, res) * 2 - 1
        objective = build_objective(method_weights(method, params["adapt"]["weights"]), unet, sched, batch, params["adapt"].get("options"))
        runs = {}
        for precision in ("fp32", "bf16"):
            model = copy.deepcopy(unet).train()
            runs[precision] = (model, torch.optim.AdamW(model.parameters(), 1e-5, fused=True), torch.Generator().manual_seed(0))
        times = {precision: [] for precision in runs}
        for i in range(a.repeats + 2):
            for precision, (model, opt, gen) in runs.items():
                t0 = time.perf_counter()
                with attention_kernel(device), autocast(device, precision):
                    loss, _ = objective(model, x0, gen)
                opt.zero_grad(); loss.backward(); opt.step()
                if i >= 2:
                    times[precision].append(time.perf_counter() - t0)
        _report(case, times)

    model, x, t = unet.eval(), torch.randn(125, 3, res, res), torch.tensor(500)
    times = {"fp32": [], "bf16": []}
    with torch.no_grad():
        for i in range(a.repeats + 2):
            for precision in times:
                t0 = time.perf_counter()
                with autocast(device, precision):
                    model(x, t)
                if i >= 2:
                    times[precision].append(time.perf_counter() - t0)
    _report("sampling (125 images)", times)


def _report(case: str, times: dict[str, list[float]]) -> None:
    med = {precision: statistics.median(ts) * 1000 for precision, ts in times.items()}
    print(f"  {case:24s} fp32 {med['fp32']:7.1f}  bf16 {med['bf16']:7.1f}   bf16/fp32 {med['bf16'] / med['fp32']:.2f}")


if __name__ == "__main__":
    main()
