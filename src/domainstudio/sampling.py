"""Sampling from a trained UNet, deterministic by seed: DDIM (Song et al. 2021, eq. 12; ``sampler: ddim``) or DDPM's
ancestral sampler (Ho et al. 2020, Algorithm 2; ``sampler: ddpm``), both over ``ddim_steps`` steps.

The initial noise of sample i depends only on (seed, i), and so does its noise at every step (one stream per
sample, :func:`step_noise`, :class:`SampleNoise`): results do not depend on the batch size.
``source_above_t`` is the official DomainStudio code's variant (``fixed_diffusion_timesteps = 500``): the
source model denoises the steps with t >= source_above_t and the adapted model the rest, trading target style
for the source model's diversity.

``sampler: ddpm`` with ``ddim_steps`` = the training schedule's 1,000 steps is the released DomainStudio code's
sampler (guided-diffusion's ``p_sample_loop``): x0_hat clipped to [-1, 1], the posterior mean of q(x_{t-1} | x_t,
x0_hat), the scheduler's variance (beta~_t for ``fixed_small``, Improved DDPM's interpolation for a learned
variance). DDIM with eta 1 over the same 1,000 steps is the same chain only without the clipping (diffusers' DDIM
keeps the model's eps after clipping x0_hat, guided-diffusion re-derives it) and with the variance beta~_t.
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


SAMPLERS = ("ddim", "ddpm")  # DDIM (eta: its stochasticity), or DDPM's ancestral sampler (the released code's)


@dataclass
class SampleConfig:
    """params.yaml's sample block. ``ddim_steps``: the number of denoising steps of either sampler (ddpm with fewer
    than the schedule's steps is the ancestral sampler on the respaced schedule); ``eta``: DDIM only."""
    n_samples: int = 1000
    ddim_steps: int = 20
    eta: float = 1.0
    batch_size: int = 125
    source_above_t: int | None = None
    precision: str = "auto"
    seed: int = 0
    device: str = "auto"
    sampler: str = "ddim"

    def __post_init__(self):
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sample.sampler: one of {list(SAMPLERS)}, not {self.sampler!r}")


def initial_noise(n: int, shape: tuple[int, int, int], seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn((n, *shape), generator=generator)


def step_noise(indices: range, steps: int, shape: tuple[int, int, int], seed: int) -> torch.Tensor:
    """The variance noise of every DDIM step (eta > 0) for samples ``indices``: len x steps x C x H x W, each sample
    from its own generator seeded by (seed, i), so that a sample's noise does not depend on the batch it is in."""
    def stream(i):
        return int.from_bytes(hashlib.sha256(f"ddim-step-noise/{seed}/{i}".encode()).digest()[:8], "little")
    return torch.stack([torch.randn((steps, *shape), generator=torch.Generator().manual_seed(stream(i))) for i in indices])


class SampleNoise:
    """The ancestral sampler's noise, drawn step by step: one generator per sample seeded by (seed, i), so that a
    sample's noise does not depend on its batch, without holding every step's noise (1,000 steps) at once."""

    def __init__(self, indices: range, shape: tuple[int, int, int], seed: int):
        def stream(i):
            return int.from_bytes(hashlib.sha256(f"ddpm-step-noise/{seed}/{i}".encode()).digest()[:8], "little")
        self.shape = shape
        self.generators = [torch.Generator().manual_seed(stream(i)) for i in indices]

    def next(self) -> torch.Tensor:
        return torch.stack([torch.randn(self.shape, generator=g) for g in self.generators])


def ancestral_step(scheduler: DDPMScheduler, eps: torch.Tensor, v: torch.Tensor | None, t: int, x: torch.Tensor,
                   noise: torch.Tensor) -> torch.Tensor:
    """One step of DDPM's ancestral sampler from t to the scheduler's previous timestep t' (Ho et al. eq. 6-7, 11):
    x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t), clipped as the scheduler's ``clip_sample`` says, then
    x_t' = c0 x0_hat + ct x_t + sigma z with beta = 1 - abar_t / abar_t', c0 = sqrt(abar_t') beta / (1 - abar_t),
    ct = sqrt(1 - beta) (1 - abar_t') / (1 - abar_t); sigma^2 = beta~ = (1 - abar_t') / (1 - abar_t) beta
    (``fixed_small``), beta (``fixed_large``), or exp(u log beta + (1 - u) log beta~), u = (v + 1) / 2
    (``learned_range``, Improved DDPM eq. 15); no noise at t' < 0. guided-diffusion's ``p_sample`` and diffusers'
    ``DDPMScheduler.step``, with the noise ``z`` given (tests/test_official.py compares them)."""
    cfg = scheduler.config
    prev = int(scheduler.previous_timestep(t))
    abar = scheduler.alphas_cumprod.to(torch.float64)
    a_t = abar[int(t)]
    a_prev = abar[prev] if prev >= 0 else torch.tensor(1.0, dtype=torch.float64)
    beta = 1 - a_t / a_prev
    x0 = (x - (1 - a_t).sqrt().float() * eps) / a_t.sqrt().float()
    if cfg.clip_sample:
        x0 = x0.clamp(-cfg.clip_sample_range, cfg.clip_sample_range)
    mean = (a_prev.sqrt() * beta / (1 - a_t)).float() * x0 + ((1 - beta).sqrt() * (1 - a_prev) / (1 - a_t)).float() * x
    if prev < 0:
        return mean
    small = ((1 - a_prev) / (1 - a_t) * beta).clamp(min=1e-20)
    kind = cfg.variance_type
    if kind == "fixed_small":
        std = small.sqrt().float()
    elif kind == "fixed_large":
        std = beta.sqrt().float()
    elif kind == "learned_range" and v is not None:
        u = (v.float() + 1) / 2
        std = torch.exp(0.5 * (u * beta.log().float() + (1 - u) * small.log().float()))
    else:
        raise ValueError(f"sample.sampler ddpm: the scheduler's variance_type {kind!r} is not supported here")
    return mean + std * noise


@torch.no_grad()
def ddim_sample(unet: UNet2DModel, train_scheduler: DDPMScheduler, cfg: SampleConfig, source: UNet2DModel | None = None) -> np.ndarray:
    """``cfg.n_samples`` images as uint8 N x H x W x 3 (``source`` is needed when ``cfg.source_above_t`` is set), by
    ``cfg.sampler``: DDIM or DDPM's ancestral sampler."""
    if cfg.source_above_t is not None and source is None:
        raise ValueError("sample.source_above_t needs the source model")
    device = resolve_device(cfg.device)
    precision = resolve_precision(device, cfg.precision)  # before any compute
    log.info("sampling on %s in %s (precision: %s, sampler: %s, %d steps)", device, precision, cfg.precision, cfg.sampler, cfg.ddim_steps)
    unet = unet.to(device).eval()
    source = source.to(device).eval() if cfg.source_above_t is not None else None
    if cfg.sampler == "ddpm":
        scheduler = DDPMScheduler.from_config(train_scheduler.config)
    else:
        scheduler = DDIMScheduler.from_config(train_scheduler.config)
    scheduler.set_timesteps(cfg.ddim_steps)
    shape = (unet.config.in_channels, *image_size(unet))
    noise = initial_noise(cfg.n_samples, shape, cfg.seed)
    out = []
    for start in tqdm(range(0, cfg.n_samples, cfg.batch_size), desc="sample", mininterval=2.0):
        x = noise[start:start + cfg.batch_size].to(device)
        batch = range(start, start + len(x))
        if cfg.sampler == "ddpm":
            ancestral = SampleNoise(batch, shape, cfg.seed)
        else:
            variance = step_noise(batch, len(scheduler.timesteps), shape, cfg.seed).to(device) if cfg.eta > 0 else None
        for k, t in enumerate(scheduler.timesteps):
            model = source if source is not None and t >= cfg.source_above_t else unet
            with autocast(device, precision):
                eps, v = eps_and_v(model, x, t)  # a learned variance is used by the ancestral sampler, not by DDIM
            if cfg.sampler == "ddpm":
                x = ancestral_step(scheduler, eps.float(), v, int(t), x, ancestral.next().to(device))
            else:
                x = scheduler.step(eps.float(), t, x, eta=cfg.eta, variance_noise=None if variance is None else variance[:, k]).prev_sample
        out.append(((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy())
    return np.concatenate(out)
