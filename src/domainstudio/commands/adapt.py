"""The adaptation verb: adapt the source DDPM to K target images with one method."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from domainstudio.commands.stage_config import config_blocks, dataclass_from
from domainstudio.devices import set_threads
from domainstudio.fingerprint import digest, model_digest, resume_key
from domainstudio.registry import ANT_METHODS


def cmd_adapt(a):
    from domainstudio.adapt import ant
    from domainstudio.adapt.methods import build_objective, method_weights
    from domainstudio.adapt.objectives import pairwise_summary
    from domainstudio.adapt.trainer import TrainConfig, train_and_save
    from domainstudio.data.images import load_image_folder
    from domainstudio.devices import resolve_device, resolve_precision
    from domainstudio.models.source import learns_variance, load_source

    cfg = config_blocks(a.config_json, {"train", "weights", "options", "ant"}, "adapt config")
    train_cfg = dataclass_from(TrainConfig, cfg.get("train"), "adapt.train")
    set_threads(a.threads)
    try:
        images = load_image_folder(a.images, a.resolution, count=a.shots)  # validates before training
        if a.method in ANT_METHODS and not a.source_images:
            raise ValueError(f"method {a.method} trains a domain classifier on the source images: give --source-images")
        source_images = load_image_folder(a.source_images, a.resolution) if a.method in ANT_METHODS else None
        unet, scheduler = load_source(a.source)
        learned_variance = learns_variance(unet)
        groups = 1
        if a.method in ANT_METHODS:
            weights = None
            objective, extra = ant.prepare(unet, scheduler, source_images, images, cfg.get("ant", {}), train_cfg.seed, train_cfg.device)
            options = cfg.get("options", {})
        else:
            weights = method_weights(a.method, cfg.get("weights"))
            objective, extra = build_objective(weights, unet, scheduler, train_cfg.batch_size, cfg.get("options")), {}
            options = dataclasses.asdict(objective.options)  # every option, defaults included
            groups = objective.options.pairwise_groups or 1  # the batch is drawn group by group (trainer.train)
            if train_cfg.batch_size % groups:
                raise ValueError(f"adapt.train.batch_size {train_cfg.batch_size} does not split into pairwise_groups = {groups} equal groups")
    except (TypeError, ValueError) as err:
        raise SystemExit(f"error: {err}") from None
    fingerprint = digest(resume_key(cfg), a.method, a.shots, images, model_digest(Path(a.source)),
                         *([source_images] if source_images is not None else []))
    record = {"method": a.method, "shots": a.shots, "weights": dataclasses.asdict(weights) if weights else {},
              "options": options, "train": dataclasses.asdict(train_cfg),
              "precision": resolve_precision(resolve_device(train_cfg.device), train_cfg.precision),
              "learned_variance": learned_variance, "source": str(a.source), "images": str(a.images), **extra}
    train_and_save(unet, scheduler, images, objective, train_cfg, a.out, a.checkpoint, fingerprint,
                   {"adaptation.json": lambda log_csv: {**record, **pairwise_summary(log_csv)}}, groups=groups)


def add_verbs(verb) -> None:
    s = verb("adapt", cmd_adapt, "Adapt the source model to K target images with one method")
    s.add_argument("--source", required=True); s.add_argument("--images", required=True); s.add_argument("--shots", type=int, required=True)
    s.add_argument("--method", required=True); s.add_argument("--resolution", type=int, required=True)
    s.add_argument("--config-json", required=True, help='{"train": {...}, "weights": {...}, "options": {...}} from params.yaml; dpms-ant: {"train", "ant"}')
    s.add_argument("--source-images", help="the source training images (method dpms-ant: its domain classifier)")
    s.add_argument("--checkpoint", required=True); s.add_argument("--out", required=True); s.add_argument("--threads", type=int)
