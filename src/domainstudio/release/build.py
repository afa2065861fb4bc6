"""Making a release: a trained source DDPM or source GAN with its quality curve, sample grid and manifest, or the
embedded metric backbone with its sanity numbers."""
from __future__ import annotations

import csv
import json
import platform
import shutil
import subprocess
from pathlib import Path

from domainstudio.manifest import sha256_of, write_manifest


def git_commit(cwd: str | Path = ".") -> str:
    """The checkout's commit, with ``-dirty`` when tracked files differ from it; ``unknown`` outside git."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd, capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


def machine() -> dict:
    """What trained it: CPU model, core count, and the torch build."""
    import os

    import torch

    from domainstudio.devices import cpuinfo_field

    cpu = cpuinfo_field("model name") or platform.processor() or platform.machine()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": cpu, "cores": os.cpu_count(), "gpu": gpu, "torch": torch.__version__, "python": platform.python_version()}


def _copy(src: Path, dst: Path) -> None:
    if src.is_dir():
        shutil.copytree(src, dst)
    else:
        shutil.copy2(src, dst)


def _train_log(folder: Path) -> list[dict]:
    with open(folder / "train_log.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def release_source(model: Path, out: Path, backbone: Path, snapshots: Path | None, world: str, resolution: int, data_seed: int,
                   quality_cfg, scheduler_cfg, command: str, params: dict) -> dict:
    """Release a trained source DDPM (the pretrain_source rule's folder) as ``out``: the diffusers folder, its training
    log, its quality curve over the trainer's snapshots (FID against fresh source images, release/quality_curve.py),
    a 64-sample grid and the manifest."""
    from domainstudio.models.source import count_parameters, load_source

    def parameters(folder):
        return count_parameters(load_source(folder)[0])

    return _release_trained(model, out, ("model_index.json", "unet", "scheduler", "train_log.csv"),
                            "source DDPM (diffusers DDPMPipeline)", parameters, backbone, snapshots, world, resolution,
                            data_seed, quality_cfg, scheduler_cfg, command, params)


def release_gan(model: Path, out: Path, backbone: Path, snapshots: Path | None, world: str, resolution: int, data_seed: int,
                quality_cfg, command: str, params: dict) -> dict:
    """Release the source GAN of the baselines (the pretrain_source_gan rule's folder) as ``out``, as
    :func:`release_source` releases the DDPM: gan.pt, training log, quality curve, grid and manifest."""
    from domainstudio.gan.artifact import load_gan
    from domainstudio.gan.networks import count_parameters

    def parameters(folder):
        generator, discriminator = load_gan(folder)
        return {"generator": count_parameters(generator), "discriminator": count_parameters(discriminator)}

    return _release_trained(model, out, ("gan.pt", "gan.json", "train_log.csv"), "source GAN (gan.pt)", parameters,
                            backbone, snapshots, world, resolution, data_seed, quality_cfg, None, command, params)


def _release_trained(model: Path, out: Path, files, kind: str, parameters, backbone: Path, snapshots: Path | None, world: str,
                     resolution: int, data_seed: int, quality_cfg, scheduler_cfg, command: str, params: dict) -> dict:
    from domainstudio.atomic import atomic_dir
    from domainstudio.data.images import image_grid
    from domainstudio.release.quality_curve import quality_curve, trained_steps, write_curve
    from domainstudio.report.figures import quality_curve as curve_figure

    steps = trained_steps(model)
    log_rows = _train_log(model)
    folders = [f for f in sorted(snapshots.glob("step*")) if (trained_steps(f) or 0) < steps] if snapshots else []
    with atomic_dir(out) as tmp:
        for name in files:
            _copy(model / name, tmp / name)
        rows, images = quality_curve([*folders, model], backbone, world, resolution, data_seed, quality_cfg, scheduler_cfg)
        rows[-1]["model"] = "release"
        write_curve(rows, tmp / "quality_curve.csv")
        curve_figure(rows, tmp / "quality_curve.png")
        image_grid(images[:64], columns=8, scale=2).save(tmp / "samples.png")
        quality = {"fid": rows[-1]["fid"], "floor": rows[-1]["floor"], "samples": quality_cfg.samples}
        if rows[-1]["ddim_steps"] is not None:
            quality["ddim_steps"] = quality_cfg.ddim_steps
        record = {
            "name": out.name, "kind": kind, "world": world, "resolution": resolution, "parameters": parameters(tmp),
            "command": command, "params": params, "commit": git_commit(), "machine": machine(), "steps": steps,
            "training_seconds": float(log_rows[-1].get("elapsed_s") or "nan"),
            "quality": {**quality, "reference": f"{quality_cfg.samples} fresh source images (split 'fresh')",
                        "backbone": str(backbone), "backbone_sha256": sha256_of(Path(backbone) / "backbone.safetensors")},
        }
        return write_manifest(tmp, record)


def release_backbone(backbone: Path, out: Path, command: str, params: dict) -> dict:
    """Release the embedded metric backbone (the train_backbone rule's folder) as ``out`` with its sanity numbers."""
    from domainstudio.atomic import atomic_dir

    meta = json.loads((backbone / "backbone.json").read_text())
    sanity, report = meta["sanity"], meta["report"]
    with atomic_dir(out) as tmp:
        for name in ("backbone.json", "backbone.safetensors"):
            _copy(backbone / name, tmp / name)
        record = {
            "name": out.name, "kind": "embedded metric backbone", "world": meta["world"], "resolution": meta["resolution"],
            "command": command, "params": params, "commit": git_commit(), "machine": machine(),
            "steps": meta["train"]["steps"], "training_seconds": meta.get("train_seconds"),
            "quality": {
                "held_out_domain_accuracy": report["domain_accuracy"],
                "lpips_noise_sigmas": sanity["noise_sigmas"],
                "lpips_to_noised_copy": {d: v["noised"] for d, v in sanity["domains"].items()},
                "lpips_to_other_identities": {d: v["other_identities"] for d, v in sanity["domains"].items()},
                "fid_within_domain": sanity["fid_within"], "fid_between_domains": sanity["fid_between"],
            },
        }
        return write_manifest(tmp, record)
