"""The unconditional diffusion trainer, for source pre-training and every adaptation method: a uniform draw of
the training images (flipped at random) fed to :func:`domainstudio.training.run_training`, the one loop of the
diffusion family (seeded, resumable, warm-up and EMA)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from domainstudio.training import LoopConfig, pixel_batch, run_training, uint8_nchw


@dataclass
class TrainConfig(LoopConfig):
    """The loop's settings (defaults: params.yaml's adapt.train; source pre-training passes source.train), the
    random left-right flip of the training images, AdamW's betas and weight decay (dpms-ant: adapt.ant.train) and
    ``dropout``: None keeps the model's own; p switches the UNet's residual-block dropout to p while it trains (the
    released code's ``--dropout 0.1``: guided-diffusion's ResBlock dropout, diffusers' ResnetBlock2D.dropout), and the
    saved model keeps its configuration."""
    hflip: bool = True
    adam_betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    dropout: float | None = None

    def __post_init__(self):
        self.adam_betas = tuple(self.adam_betas)
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise ValueError(f"adapt.train.dropout: in [0, 1) or null, not {self.dropout}")


def resnet_dropouts(unet) -> list[torch.nn.Dropout]:
    """The dropout layers that a UNet2DModel's ``dropout`` configuration sets: one per residual block (attention and
    DPMs-ANT adaptors have their own, untouched)."""
    from diffusers.models.resnet import ResnetBlock2D, ResnetBlockCondNorm2D

    return [m.dropout for m in unet.modules() if isinstance(m, (ResnetBlock2D, ResnetBlockCondNorm2D))]


def set_dropout(unet, p: float | None) -> list[float]:
    """Set every residual-block dropout of ``unet`` to ``p`` (None: leave them) and return the previous values."""
    layers = resnet_dropouts(unet)
    before = [layer.p for layer in layers]
    if p is not None:
        for layer in layers:
            layer.p = float(p)
    return before


def restore_dropout(unet, values: list[float]) -> None:
    for layer, p in zip(resnet_dropouts(unet), values):
        layer.p = p


def train(unet, images: np.ndarray, objective, cfg: TrainConfig, checkpoint: str | Path, fingerprint: str, log_csv: str | Path | None = None,
          snapshot_dir: str | Path | None = None, snapshot_every: int = 0, keep_final_checkpoint: bool = False, groups: int = 1):
    """Train ``unet`` on uint8 images (N x H x W x 3) with ``objective`` (``objective(unet, x0, generator)``) in
    :func:`domainstudio.training.run_training`; return the final (EMA) UNet on the CPU.

    ``checkpoint`` is a file that survives a killed run, reused only when its ``fingerprint`` (the caller's digest
    of config, data and source model, without the number of steps) matches and it is not past ``cfg.steps``. Every
    ``snapshot_every`` steps the (EMA) weights are saved as a diffusers UNet folder ``snapshot_dir/step<N>`` (a
    quality curve is measured on them). With ``keep_final_checkpoint`` the state at the last step is saved too, so
    that a later run with more steps continues this one (source pre-training); otherwise the caller removes the
    checkpoint once the model is written. ``groups``: the batch is drawn as that many independent draws of
    batch_size / groups images (each without replacement when it fits in the K images), as each of the released
    code's GPUs loads its own batch; with ``cfg.dropout`` set the residual blocks drop out at that rate while training.
    """
    data = uint8_nchw(images)
    if cfg.batch_size % groups:
        raise ValueError(f"batch_size {cfg.batch_size} does not split into {groups} equal groups")

    def draw_batch(generator, device):
        if groups == 1:
            return pixel_batch(data, cfg.batch_size, cfg.hflip, generator).to(device)
        return torch.cat([pixel_batch(data, cfg.batch_size // groups, cfg.hflip, generator) for _ in range(groups)]).to(device)

    def make_optimizer(parameters):
        # fused: one kernel for all tensors instead of a loop over them (benchmarks/train_step.py)
        return torch.optim.AdamW(parameters, lr=cfg.lr, betas=cfg.adam_betas, weight_decay=cfg.weight_decay, fused=True)

    def save_snapshot(weights, step):
        weights.save_pretrained(Path(snapshot_dir) / f"step{step}")

    configured = set_dropout(unet, cfg.dropout)
    try:
        final = run_training(unet, cfg, draw_batch, objective, make_optimizer, checkpoint, fingerprint, log_csv,
                             save_snapshot if snapshot_dir is not None else None, snapshot_every, keep_final_checkpoint,
                             cpu_math_attention=True)
    finally:
        restore_dropout(unet, configured)
    restore_dropout(final, configured)
    return final


def train_and_save(unet, scheduler, images: np.ndarray, objective, cfg: TrainConfig, out: str | Path, checkpoint: str | Path,
                   fingerprint: str, metadata: dict | None = None, snapshots: dict | None = None, keep_checkpoint: bool = False,
                   groups: int = 1) -> None:
    """Train, then write the diffusers folder (plus train_log.csv and ``metadata`` records, each a JSON-able dict or
    a function of the written train_log.csv) atomically to ``out``. The checkpoint is removed once the output is
    complete, unless ``keep_checkpoint`` (source pre-training: the state at the last step stays, so raising the
    steps continues it). ``snapshots``: the trainer's snapshot_dir and snapshot_every; ``groups``: as in :func:`train`."""
    import json

    from domainstudio.atomic import atomic_dir
    from domainstudio.models.source import save_source

    with atomic_dir(out) as tmp:
        final = train(unet, images, objective, cfg, checkpoint, fingerprint, log_csv=tmp / "train_log.csv",
                      keep_final_checkpoint=keep_checkpoint, groups=groups, **(snapshots or {}))
        save_source(final, scheduler, tmp)
        for name, record in (metadata or {}).items():
            record = record(tmp / "train_log.csv") if callable(record) else record
            (tmp / name).write_text(json.dumps(record, indent=2))
    if not keep_checkpoint:
        Path(checkpoint).unlink(missing_ok=True)
