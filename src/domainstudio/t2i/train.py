"""The text-to-image trainer: the UNet learns, the VAE and the text encoder stay frozen (DreamBooth's setting).

Latent distributions of the instance and class images are encoded once; each step draws a fresh latent
sample from them (as the official release does with its cached ``latent_dist``). All randomness comes from one
seeded ``torch.Generator``, so a run is deterministic by seed on CPU. The adapted model is the full UNet (no
LoRA), as in DreamBooth and the official DomainStudio code.
"""
from __future__ import annotations

import copy
import logging
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from domainstudio.adapt.objectives import DomainStudioWeights
from domainstudio.devices import autocast, grad_scaler, resolve_device, resolve_precision, scaled_step
from domainstudio.train_log import write_train_log
from domainstudio.t2i.objective import DreamBoothDomainStudio, T2IBatch, T2IOptions
from domainstudio.t2i.pipeline import encode_prompt

log = logging.getLogger(__name__)


@dataclass
class T2ITrainConfig:
    """Official release: lr 5e-6 (constant), 800 steps, batch 4 (+ 4 class images) at 512 px."""

    steps: int = 800
    batch_size: int = 4
    lr: float = 5e-6
    weight_decay: float = 1e-2
    grad_clip: float = 1.0
    precision: str = "auto"  # auto (bf16 where native, else fp32) | fp32 | bf16 (autocast) | fp16 (+ GradScaler; CUDA only)
    gradient_checkpointing: bool = False
    log_every: int = 10
    seed: int = 0
    device: str = "auto"


def to_pixels(images: np.ndarray) -> torch.Tensor:
    """uint8 N x H x W x 3 -> float N x 3 x H x W in [-1, 1]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0


@torch.no_grad()
def encode_latent_dist(vae, images: np.ndarray, device: torch.device, chunk: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std of the VAE's latent distribution of every image, in chunks."""
    means, stds = [], []
    for start in range(0, len(images), chunk):
        dist = vae.encode(to_pixels(images[start:start + chunk]).to(device)).latent_dist
        means.append(dist.mean.float())
        stds.append(dist.std.float())
    return torch.cat(means), torch.cat(stds)


def _indices(n: int, k: int, generator: torch.Generator) -> torch.Tensor:
    return torch.randperm(n, generator=generator)[:k] if k <= n else torch.randint(0, n, (k,), generator=generator)


def train_t2i(pipe, instance_images: np.ndarray, class_images: np.ndarray, instance_prompt: str, class_prompt: str,
              weights: DomainStudioWeights, options: T2IOptions, cfg: T2ITrainConfig, log_csv=None):
    """Adapt ``pipe.unet`` (left untouched: it is the frozen source) and return the adapted UNet on the CPU."""
    device = resolve_device(cfg.device)
    precision = resolve_precision(device, cfg.precision)  # before any compute
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
    optimizer = torch.optim.AdamW(unet.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scaler = grad_scaler(device, precision)  # fp16: loss scaling against gradient underflow; else pass-through
    generator = torch.Generator().manual_seed(cfg.seed)
    rows = []
    for step in tqdm(range(1, cfg.steps + 1), desc="t2i-adapt", mininterval=2.0):
        i = _indices(len(instance_images), cfg.batch_size, generator).to(device)
        j = _indices(len(class_images), cfg.batch_size, generator).to(device)
        z_ins = (ins_mean[i] + ins_std[i] * torch.randn(ins_mean[i].shape, generator=generator).to(device)) * scale
        z_cls = (cls_mean[j] + cls_std[j] * torch.randn(cls_mean[j].shape, generator=generator).to(device)) * scale
        batch = T2IBatch(z_ins=z_ins, z_cls=z_cls, x_ins=x_ins_all[i], c_ins=c_ins, c_cls=c_cls)
        with autocast(device, precision):
            loss, terms = objective(unet, batch, generator)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss at step {step}: {terms}")
        grad_norm = scaled_step(loss, optimizer, scaler, unet.parameters(), cfg.grad_clip)
        if step % cfg.log_every == 0 or step == cfg.steps:
            rows.append({"step": step, "loss": loss.item(), "grad_norm": float(grad_norm), **terms})
    if log_csv is not None:
        write_train_log(rows, log_csv)
    if cfg.gradient_checkpointing:
        unet.disable_gradient_checkpointing()
    return unet.eval().requires_grad_(False).cpu()
