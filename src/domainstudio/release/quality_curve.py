"""A source model's quality curve: its samples (the DDPM, DDPM snapshots, or the GAN of the baselines) scored
against fresh source images (:class:`domainstudio.metrics.source_quality.SourceQuality`), one row per trainer
snapshot and the trained model, as a release records it (docs/releases.md)."""
from __future__ import annotations

import csv
import json
import logging
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from domainstudio.metrics.source_quality import SourceQuality

log = logging.getLogger(__name__)

SNAPSHOT = re.compile(r"step(\d+)")  # a trainer snapshot folder: step<N>


@dataclass
class SourceQualityConfig:
    samples: int = 2000  # generated samples, and fresh source images, per measurement
    ddim_steps: int = 20
    batch_size: int = 125
    seed: int = 0  # sampling seed (the initial noise of sample i depends on it and i only)


def sample_source(unet, scheduler, cfg: SourceQualityConfig) -> np.ndarray:
    """``cfg.samples`` deterministic DDIM samples (eta 0) of a source model (uint8 N x H x W x 3): the release's
    quality curve and the source rows of docs/evidence.md are measured with this sampler."""
    from domainstudio.sampling import SampleConfig, ddim_sample

    return ddim_sample(unet, scheduler, SampleConfig(n_samples=cfg.samples, ddim_steps=cfg.ddim_steps, eta=0.0,
                                                     batch_size=cfg.batch_size, seed=cfg.seed))


def trained_steps(folder: Path) -> int | None:
    """The training steps behind a trainer snapshot (``step<N>/``) or a trained model (its train_log.csv's last row)."""
    if m := SNAPSHOT.fullmatch(folder.name):
        return int(m.group(1))
    log_csv = folder / "train_log.csv"
    if log_csv.exists():
        with open(log_csv, newline="") as fh:
            return int(list(csv.DictReader(fh))[-1]["step"])
    return None


QUALITY_CACHE = "quality.json"  # a trainer snapshot's measured row, reused while the measurement's key is unchanged


def _weights_sha256(folder: Path) -> str:
    """The checksum of a snapshot's weights file (gan.pt or the UNet's safetensors): a training restarted from
    scratch rewrites ``step<N>`` folders, and their cached rows must not survive it."""
    from domainstudio.gan.artifact import FILE
    from domainstudio.manifest import sha256_of

    gan = folder / FILE
    return sha256_of(gan if gan.is_file() else folder / "diffusion_pytorch_model.safetensors")


def _cached_row(folder: Path, key: dict) -> dict | None:
    """The row measured on snapshot ``folder`` before under the same ``key`` (its weights' checksum, the backbone,
    data and quality settings), or None; a release re-measures only new or rewritten snapshots."""
    path = folder / QUALITY_CACHE
    if not path.is_file():
        return None
    stored = json.loads(path.read_text())
    return stored["row"] if stored.get("key") == key else None


def _cache_row(folder: Path, key: dict, row: dict) -> None:
    from domainstudio.atomic import atomic_file

    with atomic_file(folder / QUALITY_CACHE) as tmp:
        Path(tmp).write_text(json.dumps({"key": key, "row": row}, indent=2))


def load_model_or_snapshot(folder: Path, scheduler_cfg):
    """A source model folder (DDPMPipeline) or a trainer snapshot (a bare UNet folder; scheduler from its config)."""
    from diffusers import UNet2DModel

    from domainstudio.models.source import build_scheduler, load_source

    if (folder / "unet").is_dir():
        return load_source(folder)
    return UNet2DModel.from_pretrained(folder), build_scheduler(scheduler_cfg)


def is_gan(folder: Path) -> bool:
    from domainstudio.gan.artifact import FILE

    return (Path(folder) / FILE).is_file()


def sample_gan_folder(folder: Path, cfg: SourceQualityConfig) -> np.ndarray:
    """``cfg.samples`` samples of a GAN folder (gan.pt: the source GAN or one of its snapshots)."""
    from domainstudio.gan.artifact import load_gan, sample_gan

    generator, _ = load_gan(folder)
    return sample_gan(generator, cfg.samples, cfg.seed, cfg.batch_size)


def quality_curve(folders: list[Path], backbone_dir: str | Path, world: str, resolution: int, data_seed: int,
                  cfg: SourceQualityConfig, scheduler_cfg, grids: str | Path | None = None) -> tuple[list[dict], np.ndarray]:
    """One row (model, step, fid, floor) per model folder (DDPM, DDPM snapshot or GAN), in order of steps; also the
    last model's samples (None when that is a snapshot measured before: snapshots are measured once, see
    :func:`_cached_row`; a trained model folder is always measured).
    With ``grids``, a 64-sample grid per model is saved there as ``<folder name>.png``."""
    from domainstudio.data.images import image_grid
    from domainstudio.manifest import sha256_of
    from domainstudio.metrics.embedded_backbone import EmbeddedBackbone

    quality = SourceQuality(EmbeddedBackbone.load(backbone_dir).fid_features, world, resolution, data_seed, cfg.samples)
    log.info("FID floor (two disjoint sets of %d fresh source images): %.3f", cfg.samples, quality.floor)
    key = {"backbone_sha256": sha256_of(Path(backbone_dir) / "backbone.safetensors"), "world": world,
           "resolution": resolution, "data_seed": data_seed, "quality": asdict(cfg)}
    rows, images = [], None
    for folder in sorted(folders, key=lambda f: (trained_steps(f) or 0, str(f))):
        snapshot = SNAPSHOT.fullmatch(folder.name) is not None
        snapshot_key = {**key, "weights_sha256": _weights_sha256(folder)} if snapshot else None
        cached = _cached_row(folder, snapshot_key) if snapshot and grids is None else None
        if cached is not None:
            rows.append({**cached, "model": str(folder)})
            log.info("%s: FID %.3f (measured before, %s)", folder, cached["fid"], folder / QUALITY_CACHE)
            continue
        gan = is_gan(folder)
        images = sample_gan_folder(folder, cfg) if gan else sample_source(*load_model_or_snapshot(folder, scheduler_cfg), cfg)
        rows.append({"model": str(folder), "step": trained_steps(folder), "fid": round(quality.fid(images), 4),
                     "floor": round(quality.floor, 4), "samples": cfg.samples, "ddim_steps": None if gan else cfg.ddim_steps})
        log.info("%s: FID %.3f", folder, rows[-1]["fid"])
        if snapshot:
            _cache_row(folder, snapshot_key, rows[-1])
        if grids is not None:
            Path(grids).mkdir(parents=True, exist_ok=True)
            image_grid(images[:64], columns=8, scale=2).save(Path(grids) / f"{folder.name}.png")
    return rows, images


def write_curve(rows: list[dict], out: str | Path) -> None:
    from domainstudio.atomic import atomic_file

    with atomic_file(out) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
