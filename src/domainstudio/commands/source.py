"""The source-model verbs: pre-train a source DDPM, import a released or hub one, measure its quality curve."""
from __future__ import annotations

import json
import logging
from pathlib import Path

from domainstudio.commands.stage_config import config_blocks, dataclass_from
from domainstudio.devices import set_threads
from domainstudio.fingerprint import digest, resume_key

log = logging.getLogger("domainstudio")


def cmd_pretrain(a):
    import torch

    from domainstudio.adapt.objectives import NoisePrediction
    from domainstudio.adapt.trainer import TrainConfig, train_and_save
    from domainstudio.data.images import load_image_folder
    from domainstudio.models.source import SchedulerConfig, UNetConfig, build_scheduler, build_unet, count_parameters

    cfg = config_blocks(a.config_json, {"unet", "scheduler", "train"}, "source config")
    unet_cfg = dataclass_from(UNetConfig, cfg.get("unet"), "source.unet")
    sched_cfg = dataclass_from(SchedulerConfig, cfg.get("scheduler"), "source.scheduler")
    train_cfg = dataclass_from(TrainConfig, cfg.get("train"), "source.train")
    images = load_image_folder(a.images, a.resolution)  # validates every file before training
    set_threads(a.threads)
    torch.manual_seed(train_cfg.seed)
    unet = build_unet(unet_cfg, a.resolution)
    scheduler = build_scheduler(sched_cfg)
    log.info("pre-training a %d-parameter UNet on %d images from %s", count_parameters(unet), len(images), a.images)
    snapshots = {"snapshot_dir": a.snapshot_dir, "snapshot_every": a.snapshot_every} if a.snapshot_dir else None
    train_and_save(unet, scheduler, images, NoisePrediction(scheduler), train_cfg, a.out, a.checkpoint,
                   digest(resume_key(cfg), a.resolution, images), snapshots=snapshots, keep_checkpoint=True)


def cmd_source_quality(a):
    """FID of source-model samples against fresh source images, one row per model (a quality curve over snapshots)."""
    from domainstudio.release.quality_curve import SourceQualityConfig, quality_curve, write_curve
    from domainstudio.models.source import SchedulerConfig

    cfg = dataclass_from(SourceQualityConfig, json.loads(a.config_json), "source quality config")
    scheduler_cfg = dataclass_from(SchedulerConfig, json.loads(a.scheduler_json), "source.scheduler")
    missing = [m for m in a.models if not Path(m).is_dir()]
    if missing:
        raise SystemExit(f"error: no such model folder(s): {missing}")
    set_threads(a.threads)
    rows, _ = quality_curve([Path(m) for m in a.models], a.backbone, a.world, a.resolution, a.data_seed, cfg, scheduler_cfg, a.grids)
    write_curve(rows, a.out)


def cmd_import_source(a):
    from domainstudio.atomic import atomic_dir
    from domainstudio.models.source import count_parameters, image_size, load_source, save_source

    adm = json.loads(a.adm_json)
    if adm:
        from domainstudio.models.adm import AdmFlags, load_adm_checkpoint

        flags = dataclass_from(AdmFlags, adm, "source.adm")
        unet, scheduler = load_adm_checkpoint(a.pretrained, flags)
        log.info("converted the guided-diffusion checkpoint %s (%d parameters)", a.pretrained, count_parameters(unet))
    else:
        unet, scheduler = load_source(a.pretrained)
    if a.resolution and image_size(unet) != (a.resolution, a.resolution):
        raise SystemExit(f"error: source model {a.pretrained} generates {unet.config.sample_size} px images but resolution is {a.resolution}")
    with atomic_dir(a.out) as tmp:
        save_source(unet, scheduler, tmp)


def add_verbs(verb) -> None:
    s = verb("pretrain", cmd_pretrain, "Pre-train the source DDPM on the source images; writes a diffusers folder")
    s.add_argument("--images", required=True); s.add_argument("--out", required=True); s.add_argument("--resolution", type=int, required=True)
    s.add_argument("--config-json", required=True, help="the source block of params.yaml as JSON")
    s.add_argument("--checkpoint", required=True, help="file for the training state, every train.checkpoint_every steps and at the end (raising the steps continues it)")
    s.add_argument("--snapshot-dir", help="save the (EMA) weights here every --snapshot-every steps (step<N>/ folders)")
    s.add_argument("--snapshot-every", type=int, default=0)
    s.add_argument("--threads", type=int)

    s = verb("source-quality", cmd_source_quality, "FID of source models' samples against fresh source images (quality curve)")
    s.add_argument("--models", nargs="+", required=True, help="source model folders or trainer snapshots (step<N>/)")
    s.add_argument("--backbone", required=True, help="the embedded metric backbone folder")
    s.add_argument("--world", default="faces"); s.add_argument("--resolution", type=int, required=True)
    s.add_argument("--data-seed", type=int, default=0, help="data.seed: the seed of the rendered world")
    s.add_argument("--config-json", default="{}", help="samples, ddim_steps, batch_size, seed as JSON")
    s.add_argument("--scheduler-json", default="{}", help="source.scheduler as JSON (for snapshots, which hold a UNet only)")
    s.add_argument("--out", required=True, help="CSV: model, step, fid, floor"); s.add_argument("--grids", help="folder for a 64-sample grid per model")
    s.add_argument("--threads", type=int)

    s = verb("import-source", cmd_import_source, "Load a released DDPM (hub id, local folder or guided-diffusion .pt) and save it as the source model")
    s.add_argument("--pretrained", required=True); s.add_argument("--out", required=True); s.add_argument("--resolution", type=int)
    s.add_argument("--adm-json", default="{}", help="source.adm as JSON: --pretrained is a guided-diffusion state dict with these model flags")
