"""The GPU check of the paper-scale path: adaptation step time and peak memory, DDIM sampling throughput, and the smoke
workflow on the device. One JSON out; under 8 minutes on one data-centre GPU.

    python benchmarks/gpu_check.py --out gpu_check.json              # on CUDA: the paper's two 256 px source UNets
    python benchmarks/gpu_check.py --tiny --out gpu_check_tiny.json  # anywhere: the same measurements on tiny UNets

Models, built from their configurations with random weights (a step costs the same whatever the weights; nothing is
downloaded): ``adm-ffhq-256``, the guided-diffusion FFHQ-256 UNet DomainStudio adapts (models/adm.py, learned
variance, so L_vlb is on), and ``ddpm-ema-celebahq-256``, the diffusers hub UNet of config/paper.yaml. Per model:
one adaptation step of ``ddpm-ft`` and ``domainstudio`` (params.yaml's weights and options, batch 6) in bf16 and
fp16 (fp32 and bf16 on a CPU), the mean of ``--steps`` timed steps after two warm-up steps and the peak memory; DDIM
sampling (``--ddim-steps`` steps, batch ``--sample-batch``) in images per second. Then, unless ``--no-workflow``,
the smoke workflow (config/smoke.yaml) with ``device: cuda`` for training and sampling, its wall time and whether
table1.csv was written.
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import tempfile
import time
from pathlib import Path

import torch
import yaml
from diffusers import UNet2DModel

from domainstudio.adapt.methods import build_objective, method_weights
from domainstudio.devices import autocast, grad_scaler, resolve_precision, scaled_step
from domainstudio.models.adm import AdmFlags, build_adm_scheduler, build_adm_unet
from domainstudio.models.source import count_parameters
from domainstudio.sampling import SampleConfig, ddim_sample

ROOT = Path(__file__).resolve().parents[1]

# google/ddpm-ema-celebahq-256's unet/config.json (the values that shape the network).
CELEBAHQ_256 = dict(sample_size=256, in_channels=3, out_channels=3, layers_per_block=2,
                    block_out_channels=(128, 128, 256, 256, 512, 512),
                    down_block_types=("DownBlock2D",) * 4 + ("AttnDownBlock2D", "DownBlock2D"),
                    up_block_types=("UpBlock2D", "AttnUpBlock2D") + ("UpBlock2D",) * 4,
                    downsample_padding=0, flip_sin_to_cos=False, freq_shift=1, norm_eps=1e-6, norm_num_groups=32,
                    attention_head_dim=None)
TINY_CELEBAHQ = {**CELEBAHQ_256, "sample_size": 32, "block_out_channels": (32, 32, 64), "layers_per_block": 1,
                 "down_block_types": ("DownBlock2D", "AttnDownBlock2D", "DownBlock2D"),
                 "up_block_types": ("UpBlock2D", "AttnUpBlock2D", "UpBlock2D")}
TINY_ADM = AdmFlags(image_size=32, num_channels=32, num_res_blocks=1, channel_mult="1,2,2", num_head_channels=16)


def models(tiny: bool):
    """name -> (unet, scheduler), random weights."""
    from domainstudio.models.source import SchedulerConfig, build_scheduler

    torch.manual_seed(0)
    flags = TINY_ADM if tiny else AdmFlags()
    return {"adm-ffhq-256": (build_adm_unet(flags), build_adm_scheduler(flags)),
            "ddpm-ema-celebahq-256": (UNet2DModel(**(TINY_CELEBAHQ if tiny else CELEBAHQ_256)), build_scheduler(SchedulerConfig()))}


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def adaptation_step(unet, scheduler, method, precision, device, batch, steps, params) -> dict:
    """Mean seconds per adaptation step of ``method`` and the peak memory, as the trainer runs it."""
    import copy

    unet = copy.deepcopy(unet).to(device).train()
    adapt = params["adapt"]
    objective = build_objective(method_weights(method, adapt["weights"]), unet, scheduler, batch, adapt.get("options"))
    if objective.source is not None:
        objective.source.to(device)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=1e-4, fused=device.type == "cuda")
    scaler = grad_scaler(device, precision)
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand((batch, 3, *[unet.config.sample_size] * 2), generator=g).to(device) * 2 - 1
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for i in range(steps + 2):
        sync(device)
        start = time.perf_counter()
        with autocast(device, precision):
            loss, _ = objective(unet, x0, g)
        scaled_step(loss, optimizer, scaler, unet.parameters(), 1.0)
        sync(device)
        if i >= 2:  # two warm-up steps
            times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated(device) / 2 ** 30 if device.type == "cuda" else None
    return {"seconds_per_step": sum(times) / len(times), "peak_memory_gib": peak, "loss": float(loss)}


def sampling(unet, scheduler, precision, device, batch, ddim_steps) -> dict:
    cfg = SampleConfig(n_samples=batch, ddim_steps=ddim_steps, batch_size=batch, precision=precision, device=str(device))
    ddim_sample(unet, scheduler, SampleConfig(n_samples=1, ddim_steps=1, batch_size=1, precision=precision, device=str(device)))
    sync(device)
    start = time.perf_counter()
    ddim_sample(unet, scheduler, cfg)
    sync(device)
    seconds = time.perf_counter() - start
    return {"images_per_second": batch / seconds, "seconds": seconds, "ddim_steps": ddim_steps, "batch": batch}


def smoke_workflow(device: str) -> dict:
    """The smoke run in a scratch copy of the checkout, training and sampling on ``device``."""
    with tempfile.TemporaryDirectory() as tmp:
        tracked = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True)
        for rel in tracked.stdout.split():
            (Path(tmp) / rel).parent.mkdir(parents=True, exist_ok=True)
            (Path(tmp) / rel).write_bytes((ROOT / rel).read_bytes())
        overlay = Path(tmp) / "config" / "device.yaml"
        overlay.write_text(yaml.safe_dump({"adapt": {"train": {"device": device}}, "sample": {"device": device},
                                           "source": {"train": {"device": device}}}))
        start = time.perf_counter()
        proc = subprocess.run(["snakemake", "--cores", "all", "results/table1.csv", "--configfile", "config/smoke.yaml",
                               str(overlay)], cwd=tmp, capture_output=True, text=True)
        return {"device": device, "returncode": proc.returncode, "wall_seconds": time.perf_counter() - start,
                "table1_written": (Path(tmp) / "results" / "table1.csv").exists(), "log_tail": proc.stderr[-2000:]}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True); p.add_argument("--tiny", action="store_true", help="tiny UNets (CPU, CI)")
    p.add_argument("--batch", type=int, default=6); p.add_argument("--steps", type=int, default=5)
    p.add_argument("--sample-batch", type=int, default=50); p.add_argument("--ddim-steps", type=int, default=10)
    p.add_argument("--no-workflow", action="store_true", help="skip the smoke workflow")
    a = p.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not a.tiny and device.type != "cuda":
        raise SystemExit("error: the full-size check needs a CUDA GPU; use --tiny on a CPU")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    precisions = ["bf16", "fp16"] if device.type == "cuda" else ["fp32", "bf16"]
    report = {"device": torch.cuda.get_device_name(0) if device.type == "cuda" else platform.processor() or "cpu",
              "torch": torch.__version__, "tiny": a.tiny, "batch": a.batch, "models": {}}
    started = time.perf_counter()
    for name, (unet, scheduler) in models(a.tiny).items():
        entry = {"parameters": count_parameters(unet), "adaptation": {}, "sampling": {}}
        for precision in precisions:
            resolve_precision(device, precision)
            for method in ("ddpm-ft", "domainstudio"):
                entry["adaptation"][f"{method}/{precision}"] = adaptation_step(unet, scheduler, method, precision, device, a.batch, a.steps, params)
            entry["sampling"][precision] = sampling(unet, scheduler, precision, device, a.sample_batch, a.ddim_steps)
        report["models"][name] = entry
        print(json.dumps({name: entry}, indent=1), flush=True)
    report["measure_seconds"] = time.perf_counter() - started
    if not a.no_workflow:
        report["smoke_workflow"] = smoke_workflow("cuda" if device.type == "cuda" else "cpu")
    Path(a.out).write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
