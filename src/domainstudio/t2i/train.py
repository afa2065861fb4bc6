"""The text-to-image trainer: the UNet learns, the VAE and the text encoder stay frozen (DreamBooth's setting).

Latent distributions of the instance and class images are encoded once; each step draws a fresh latent
sample from them (as the official release does with its cached ``latent_dist``). The loop is the diffusion
family's one (:func:`domainstudio.training.run_training`): seeded, deterministic by seed on CPU, resumable, with
warm-up and EMA as options. The adapted model is the full UNet (no LoRA), as in DreamBooth and the official
DomainStudio code.
"""
from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from domainstudio.adapt.objectives import DomainStudioWeights
from domainstudio.devices import resolve_device, resolve_precision
from domainstudio.training import LoopConfig, draw_indices, run_training, to_pixels
from domainstudio.t2i.objective import DreamBoothDomainStudio, T2IBatch, T2IOptions
from domainstudio.t2i.pipeline import encode_prompt

log = logging.getLogger(__name__)


@dataclass
class T2ITrainConfig(LoopConfig):
    """The loop's settings with the text-to-image defaults: the official release's lr 5e-6 (constant), 800 steps,
    batch 4 (+ 4 class images) at 512 px, AdamW's weight decay 1e-2, no EMA."""

    steps: int = 800
    batch_size: int = 4
    lr: float = 5e-6
    precision: str = "fp32"
    log_every: int = 10
    weight_decay: float = 1e-2
    gradient_checkpointing: bool = False


@torch.no_grad()
def encode_latent_dist(vae, images: np.ndarray, device: torch.device, chunk: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std of the VAE's latent distribution of every image, in chunks."""
    means, stds = [], []
    for start in range(0, len(images), chunk):
        dist = vae.encode(to_pixels(images[start:start + chunk]).to(device)).latent_dist
        means.append(dist.mean.float())
        stds.append(dist.std.float())
    return torch.cat(means), torch.cat(stds)


def train_t2i(pipe, instance_images: np.ndarray, class_images: np.ndarray, instance_prompt: str, class_prompt: str,
              weights: DomainStudioWeights, options: T2IOptions, cfg: T2ITrainConfig, log_csv=None,
              checkpoint: str | Path | None = None, fingerprint: str = ""):
    """Adapt ``pipe.unet`` (left untouched: it is the frozen source) in :func:`domainstudio.training.run_training`
    and return the adapted UNet on the CPU. With ``checkpoint``, a killed run resumes from its last state."""
    device = resolve_device(cfg.device)
    resolve_precision(device, cfg.precision)  # refuses an impossible precision before any compute
    torch.manual_seed(cfg.seed)
    vae, text_encoder = pipe.vae.to(device).eval(), pipe.text_encoder.to(device).eval()
    vae.requires_grad_(False)
    text_encoder.requires_grad_(False)
    source = pipe.unet.to(device).eval().requires_grad_(False)
    unet = copy.deepcopy(source).train().requires_grad_(True)
    if cfg.gradient_checkpointing:
        unet.enable_gradient_checkpointing()
    objective = DreamBoothDomainStudio(pipe.scheduler, vae, source, weights, options, cfg.batch_size)
    scale = vae.config.scaling_factor
    ins_mean, ins_std = encode_latent_dist(vae, instance_images, device)
    cls_mean, cls_std = encode_latent_dist(vae, class_images, device)
    x_ins_all = to_pixels(instance_images).to(device)
    c_ins, c_cls = encode_prompt(pipe, instance_prompt, device), encode_prompt(pipe, class_prompt, device)

    def draw_batch(generator, device):
        """K instance and K class latents, each a fresh draw from its image's cached latent distribution."""
        i = draw_indices(len(instance_images), cfg.batch_size, generator).to(device)
        j = draw_indices(len(class_images), cfg.batch_size, generator).to(device)
        z_ins = (ins_mean[i] + ins_std[i] * torch.randn(ins_mean[i].shape, generator=generator).to(device)) * scale
        z_cls = (cls_mean[j] + cls_std[j] * torch.randn(cls_mean[j].shape, generator=generator).to(device)) * scale
        return T2IBatch(z_ins=z_ins, z_cls=z_cls, x_ins=x_ins_all[i], c_ins=c_ins, c_cls=c_cls)

    def make_optimizer(parameters):
        return torch.optim.AdamW(parameters, lr=cfg.lr, weight_decay=cfg.weight_decay)

    final = run_training(unet, cfg, draw_batch, objective, make_optimizer, checkpoint, fingerprint, log_csv, desc="t2i-adapt")
    if cfg.gradient_checkpointing:
        final.disable_gradient_checkpointing()
    return final.requires_grad_(False)
