"""One GAN training loop for source pre-training and every adaptation method (methods.py says what differs).

Alternating steps as in StyleGAN2: a discriminator step (logistic loss, lazy R1 every ``r1_every`` steps), then
a generator step (non-saturating loss plus the method's regulariser). Deterministic on CPU: network weights come
from ``torch.manual_seed(seed)`` and every draw (z, batches, flips) from one seeded ``torch.Generator``.
"""
from __future__ import annotations

import copy
import logging
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from domainstudio.train_log import write_train_log
from domainstudio.gan.losses import discriminator_loss, generator_loss, r1_penalty
from domainstudio.gan.methods import Adaptation

log = logging.getLogger(__name__)


@dataclass
class GanTrainConfig:
    steps: int = 2000
    batch_size: int = 32
    lr: float = 2e-3          # Adam(beta1=0, beta2=0.99) as StyleGAN2, for G and D
    r1_gamma: float = 0.05
    r1_every: int = 4         # lazy R1 (StyleGAN2 §B): the penalty, scaled by r1_every, every r1_every steps
    ema_decay: float = 0.0    # EMA of the generator's weights (0: the raw weights are kept)
    hflip: bool = True
    log_every: int = 50
    seed: int = 0


def _real_batch(data: torch.Tensor, n: int, hflip: bool, rng: torch.Generator) -> torch.Tensor:
    idx = torch.randperm(len(data), generator=rng)[:n] if n <= len(data) else torch.randint(0, len(data), (n,), generator=rng)
    x = data[idx]
    if hflip:
        flip = torch.rand(n, generator=rng) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    return x


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 N x H x W x 3 -> float N x 3 x H x W in [-1, 1]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def train_gan(generator, discriminator, images: np.ndarray, cfg: GanTrainConfig, rule: Adaptation, rng: torch.Generator,
              log_csv=None):
    """Train ``generator`` and ``discriminator`` on uint8 images with ``rule``; return the generator to keep (its EMA
    when ``ema_decay`` > 0) and the training log rows."""
    data = to_tensor(images)
    g_params = [p for p in generator.parameters() if p.requires_grad]
    d_params = rule.discriminator_parameters(discriminator)
    g_opt = torch.optim.Adam(g_params, lr=cfg.lr, betas=(0.0, 0.99))
    d_opt = torch.optim.Adam(d_params, lr=cfg.lr, betas=(0.0, 0.99))
    ema = copy.deepcopy(generator).eval().requires_grad_(False) if cfg.ema_decay > 0 else None
    generator.train(), discriminator.train()
    rows = []
    for step in tqdm(range(cfg.steps), desc="gan", mininterval=2.0):
        # Discriminator step.
        z, patch = rule.latents(step, cfg.batch_size, rng)
        with torch.no_grad():
            fake = generator(z)
        real = _real_batch(data, cfg.batch_size, cfg.hflip, rng)
        d_loss = discriminator_loss(discriminator(real, patch=patch), discriminator(fake, patch=patch))
        terms = {"d_loss": d_loss.item()}
        if cfg.r1_gamma > 0 and step % cfg.r1_every == 0:
            r1 = r1_penalty(discriminator, real)
            d_loss = d_loss + cfg.r1_gamma / 2 * cfg.r1_every * r1
            terms["r1"] = r1.item()
        d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        d_opt.step()

        # Generator step (the discriminator's weights take no gradient here).
        for p in d_params:
            p.requires_grad_(False)
        z, patch = rule.latents(step, cfg.batch_size, rng)
        g_loss = generator_loss(discriminator(generator(z), patch=patch))
        terms["g_loss"] = g_loss.item()
        extra, extra_terms = rule.generator_regulariser(generator, rng)
        if extra is not None:
            g_loss = g_loss + extra
            terms.update(extra_terms)
        g_opt.zero_grad(set_to_none=True)
        g_loss.backward()
        g_opt.step()
        for p in d_params:
            p.requires_grad_(True)
        if not all(np.isfinite(v) for v in terms.values()):
            raise FloatingPointError(f"non-finite GAN loss at step {step}: {terms}")
        if ema is not None:
            with torch.no_grad():
                for pe, p in zip(ema.parameters(), generator.parameters()):
                    pe.lerp_(p, 1 - cfg.ema_decay)
        if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
            rows.append({"step": step + 1, **terms})
    if log_csv is not None:
        write_train_log(rows, log_csv)
    final = ema if ema is not None else copy.deepcopy(generator)
    return final.eval().requires_grad_(False), rows
