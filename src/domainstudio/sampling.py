"""DDIM sampling (Song et al. 2021, eq. 12) from a trained UNet, deterministic by seed.

The initial noise of sample i depends only on (seed, i), and so does its DDIM variance noise when eta > 0 (one
stream per sample, :func:`step_noise`): results do not depend on the batch size.
``source_above_t`` is the official DomainStudio code's variant (``fixed_diffusion_timesteps = 500``): the
source model denoises the steps with t >= source_above_t and the adapted model the rest, trading target style
for the source model's diversity.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

import numpy as np
import torch
from diffusers import DDIMScheduler, DDPMScheduler, UNet2DModel
from tqdm import tqdm

from domainstudio.devices import autocast, resolve_device, resolve_precision
from domainstudio.models.source import eps_and_v, image_size

log = logging.getLogger(__name__)


@dataclass
class SampleConfig:
    n_samples: int = 1000
    ddim_steps: int = 20
    eta: float = 1.0
    batch_size: int = 125
    source_above_t: int | None = None
    precision: str = "auto"
    seed: int = 0
    device: str = "auto"


def initial_noise(n: int, shape: tuple[int, int, int], seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn((n, *shape), generator=generator)


def step_noise(indices: range, steps: int, shape: tuple[int, int, int], seed: int) -> torch.Tensor:
    """The variance noise of every DDIM step (eta > 0) for samples ``indices``: len x steps x C x H x W, each sample
    from its own generator seeded by (seed, i), so that a sample's noise does not depend on the batch it is in."""
    def stream(i):
        return int.from_bytes(hashlib.sha256(f"ddim-step-noise/{seed}/{i}".encode()).digest()[:8], "little")
    return torch.stack([torch.randn((steps, *shape), generator=torch.Generator().manual_seed(stream(i))) for i in indices])


@torch.no_grad()
def ddim_sample(unet: UNet2DModel, train_scheduler: DDPMScheduler, cfg: SampleConfig, source: UNet2DModel | None = None) -> np.ndarray:
    """``cfg.n_samples`` images as uint8 N x H x W x 3 (``source`` is needed when ``cfg.source_above_t`` is set)."""
    if cfg.source_above_t is not None and source is None:
        raise ValueError("sample.source_above_t needs the source model")
    device = resolve_device(cfg.device)
    precision = resolve_precision(device, cfg.precision)  # before any compute
    log.info("sampling on %s in %s (precision: %s)", device, precision, cfg.precision)
    unet = unet.to(device).eval()
    source = source.to(device).eval() if cfg.source_above_t is not None else None
    ddim = DDIMScheduler.from_config(train_scheduler.config)
    ddim.set_timesteps(cfg.ddim_steps)
    shape = (unet.config.in_channels, *image_size(unet))
    noise = initial_noise(cfg.n_samples, shape, cfg.seed)
    out = []
    for start in tqdm(range(0, cfg.n_samples, cfg.batch_size), desc="sample", mininterval=2.0):
        x = noise[start:start + cfg.batch_size].to(device)
        batch = range(start, start + len(x))
        variance = step_noise(batch, len(ddim.timesteps), shape, cfg.seed).to(device) if cfg.eta > 0 else None
        for k, t in enumerate(ddim.timesteps):
            model = source if source is not None and t >= cfg.source_above_t else unet
            with autocast(device, precision):
                eps, _ = eps_and_v(model, x, t)  # a learned variance is not used by DDIM
            x = ddim.step(eps.float(), t, x, eta=cfg.eta, variance_noise=None if variance is None else variance[:, k]).prev_sample
        out.append(((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy())
    return np.concatenate(out)
