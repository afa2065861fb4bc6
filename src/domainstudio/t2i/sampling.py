"""Text-to-image samples: DDIM (eta 0 by default) with classifier-free guidance, deterministic by seed.

The initial latent of sample i depends only on (seed, i) (:func:`domainstudio.sampling.initial_noise`), so the
images do not depend on the batch size; sample i uses prompt ``prompts[i // n_per_prompt]``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from domainstudio.devices import autocast, resolve_device
from domainstudio.sampling import initial_noise


@dataclass
class T2ISampleConfig:
    prompts: list[str] = field(default_factory=lambda: ["a sks face", "a photo of a sks face", "a portrait of a sks face",
                                                        "a sks face, smiling"])
    n_per_prompt: int = 25
    steps: int = 25
    guidance_scale: float = 7.5
    eta: float = 0.0
    batch_size: int = 25
    precision: str = "fp32"
    seed: int = 0
    device: str = "auto"


@torch.no_grad()
def generate(pipe, cfg: T2ISampleConfig, resolution: int) -> tuple[np.ndarray, list[int]]:
    """uint8 N x H x W x 3 images (N = len(prompts) * n_per_prompt) and the prompt index of each."""
    from diffusers import DDIMScheduler

    if resolution % pipe.vae_scale_factor:
        raise ValueError(f"resolution {resolution} is not a multiple of the VAE's downsampling factor {pipe.vae_scale_factor}")
    device = resolve_device(cfg.device)
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    prompt_of = [p for p in range(len(cfg.prompts)) for _ in range(cfg.n_per_prompt)]
    size = resolution // pipe.vae_scale_factor
    latents = initial_noise(len(prompt_of), (pipe.unet.config.in_channels, size, size), cfg.seed)
    out = []
    for start in tqdm(range(0, len(prompt_of), cfg.batch_size), desc="t2i-sample", mininterval=2.0):
        idx = prompt_of[start:start + cfg.batch_size]
        with autocast(device, cfg.precision):
            images = pipe(prompt=[cfg.prompts[p] for p in idx], height=resolution, width=resolution,
                          num_inference_steps=cfg.steps, guidance_scale=cfg.guidance_scale, eta=cfg.eta,
                          latents=latents[start:start + len(idx)].to(device), output_type="np").images
        out.append((np.clip(images, 0, 1) * 255).round().astype(np.uint8))
    return np.concatenate(out), prompt_of
