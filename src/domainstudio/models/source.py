"""The source DDPM as a diffusers folder: build, save, and load from a local folder, a release or a hub id.

Both ways of getting a source model (pre-training on the source PNGs, or loading a released checkpoint such
as ``google/ddpm-ema-celebahq-256``) end in the same artifact: a ``DDPMPipeline.save_pretrained`` folder
with ``unet/`` and ``scheduler/``, which every later step loads with :func:`load_source`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel

from domainstudio.models import SourceModelError, is_hub_id


@dataclass
class UNetConfig:
    """A small diffusers UNet2DModel; ``attention`` puts self-attention in the given resolution levels."""

    block_out_channels: list[int] = field(default_factory=lambda: [32, 64, 128])
    layers_per_block: int = 1
    attention_levels: list[int] = field(default_factory=list)
    norm_num_groups: int = 8


@dataclass
class SchedulerConfig:
    num_train_timesteps: int = 1000
    beta_schedule: str = "linear"


def build_unet(cfg: UNetConfig, resolution: int) -> UNet2DModel:
    levels = range(len(cfg.block_out_channels))
    down = ["AttnDownBlock2D" if i in cfg.attention_levels else "DownBlock2D" for i in levels]
    up = ["AttnUpBlock2D" if i in cfg.attention_levels else "UpBlock2D" for i in reversed(levels)]
    return UNet2DModel(
        sample_size=resolution, in_channels=3, out_channels=3,
        block_out_channels=tuple(cfg.block_out_channels), layers_per_block=cfg.layers_per_block,
        down_block_types=tuple(down), up_block_types=tuple(up), norm_num_groups=cfg.norm_num_groups,
    )


def build_scheduler(cfg: SchedulerConfig) -> DDPMScheduler:
    return DDPMScheduler(num_train_timesteps=cfg.num_train_timesteps, beta_schedule=cfg.beta_schedule)


def save_source(unet: UNet2DModel, scheduler: DDPMScheduler, out: str | Path) -> None:
    """A DDPMPipeline folder; a UNet with DPMs-ANT adaptors is saved as its plain UNet plus ``ant_adaptor/``."""
    from domainstudio.models.adaptor import base_state_dict, has_adaptors, save_adaptors

    if has_adaptors(unet):
        plain = UNet2DModel.from_config(unet.config)
        plain.load_state_dict(base_state_dict(unet))
        DDPMPipeline(unet=plain, scheduler=scheduler).save_pretrained(str(out))
        save_adaptors(unet, out)
        return
    DDPMPipeline(unet=unet, scheduler=scheduler).save_pretrained(str(out))


def load_source(name: str | Path) -> tuple[UNet2DModel, DDPMScheduler]:
    """Load a diffusers DDPM from a local folder or a Hugging Face hub id (cache or network).

    Raises SourceModelError naming what to provide when neither works; never substitutes another model. A released
    folder (one with a manifest.json, domainstudio/release/) is checked against its manifest first.
    """
    path = Path(name)
    if path.exists():
        _check_release(path)
        if not (path / "unet" / "config.json").exists() and not (path / "config.json").exists():
            raise SourceModelError(
                f"{path} is not a diffusers DDPM folder: expected {path}/unet/config.json (a DDPMPipeline.save_pretrained "
                f"folder) or {path}/config.json (a bare UNet2DModel folder)")
        try:
            if (path / "unet" / "config.json").exists():
                unet = UNet2DModel.from_pretrained(path, subfolder="unet")
                scheduler = DDPMScheduler.from_pretrained(path, subfolder="scheduler")
            else:
                unet = UNet2DModel.from_pretrained(path)
                scheduler = DDPMScheduler.from_pretrained(path)
        except (OSError, ValueError) as err:
            raise SourceModelError(f"cannot load the diffusers model in {path}: {err}") from err
        _attach_saved_adaptors(unet, path)
        return _usable(unet, scheduler, str(path))
    if not is_hub_id(name):
        raise SourceModelError(f"source model {name!r}: no such local folder, and it is not a hub id of the form 'owner/name'")
    try:
        pipe = DDPMPipeline.from_pretrained(str(name))
    except Exception as err:  # hub errors come in many types (offline, 404, gated); all mean the same here
        raise SourceModelError(
            f"cannot load source model {name!r} from the Hugging Face hub or its local cache ({type(err).__name__}). "
            f"On a machine with network run `hf download {name} --local-dir models/{Path(str(name)).name}` "
            f"and set source.pretrained to that folder.") from err
    if not isinstance(pipe.unet, UNet2DModel) or not isinstance(pipe.scheduler, DDPMScheduler):
        raise SourceModelError(f"{name}: expected a DDPMPipeline of a UNet2DModel and a DDPMScheduler, got "
                               f"{type(pipe.unet).__name__} and {type(pipe.scheduler).__name__}")
    return _usable(pipe.unet, pipe.scheduler, str(name))


def _check_release(path: Path) -> None:
    from domainstudio.manifest import ReleaseError, is_release, verify_release

    if is_release(path):
        try:
            verify_release(path)
        except ReleaseError as err:
            raise SourceModelError(str(err)) from err


def _attach_saved_adaptors(unet: UNet2DModel, path: Path) -> None:
    """An adapted model of method dpms-ant: its adaptors (``ant_adaptor/``) go back beside the source UNet's blocks."""
    from domainstudio.models.adaptor import load_adaptors, saved_adaptors

    if saved_adaptors(path):
        try:
            load_adaptors(unet, path)
        except (OSError, ValueError, RuntimeError, TypeError) as err:
            raise SourceModelError(f"cannot load the DPMs-ANT adaptors in {path}/ant_adaptor: {err}") from err


def learns_variance(unet: UNet2DModel) -> bool:
    """Whether the UNet predicts Improved DDPM's variance beside the noise (twice the input channels: eps, then v)."""
    return unet.config.out_channels == 2 * unet.config.in_channels


def eps_and_v(unet: UNet2DModel, x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The predicted noise and, for a learned-variance UNet, the variance interpolation v in [-1, 1] (else None)."""
    out = unet(x, t).sample
    if learns_variance(unet):
        return out[:, : unet.config.in_channels], out[:, unet.config.in_channels:]
    return out, None


def _usable(unet: UNet2DModel, scheduler: DDPMScheduler, name: str) -> tuple[UNet2DModel, DDPMScheduler]:
    """Refuse what the trainer and sampler cannot use: UNets that predict the noise of RGB images, with a fixed
    variance or Improved DDPM's learned one (2 x 3 output channels and a ``learned_range`` scheduler)."""
    variance = scheduler.config.get("variance_type", "fixed_small")
    if learns_variance(unet) and variance != "learned_range":
        raise SourceModelError(f"{name}: the UNet has {unet.config.out_channels} output channels (noise and variance) but the "
                               f"scheduler's variance_type is {variance!r}; only 'learned_range' (Improved DDPM) is supported")
    if unet.config.out_channels not in (unet.config.in_channels, 2 * unet.config.in_channels):
        raise SourceModelError(f"{name}: the UNet has {unet.config.in_channels} input but {unet.config.out_channels} output "
                               f"channels; only noise-predicting UNets (with or without a learned variance) are supported")
    prediction = scheduler.config.get("prediction_type", "epsilon")
    if prediction != "epsilon":
        raise SourceModelError(f"{name}: the scheduler's prediction_type is {prediction!r}; only 'epsilon' is supported")
    return unet, scheduler


def image_size(unet: UNet2DModel) -> tuple[int, int]:
    """(height, width) of the UNet's images: diffusers configs hold an int or a pair."""
    size = unet.config.sample_size
    return (size, size) if isinstance(size, int) else tuple(size)


def count_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
