"""DPMs-ANT's domain classifier p(y | x_t, t): source (y = 1) vs target (y = 0) on noised images, the guide of its
similarity-guided loss (:mod:`domainstudio.adapt.ant`).

As in the authors' train_discriminator.py, each step noises a batch of source images and a batch of the K target
images at t drawn antithetically (:func:`antithetic_timesteps`) and takes a cross-entropy step; the classifier is then
frozen for the adaptation. The authors fine-tune guided-diffusion's ImageNet 256 px noisy classifier (an ADM
encoder); no such network exists for the embedded 32 px world, so this one is a small time-conditioned encoder of
diffusers blocks (conv, one ResnetBlock2D per level with the time embedding, average pooling, linear head)
trained from scratch.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)

TARGET, SOURCE = 0, 1  # the authors' labels: target images 0, source images 1


@dataclass(frozen=True)
class ClassifierConfig:
    """Authors' configs/DDPM/base_cls.yaml: 300 iterations, AdamW lr 1e-4, weight decay 1e-4, batch 10 per domain."""
    channels: list[int] = field(default_factory=lambda: [32, 64, 128])
    steps: int = 300
    batch_size: int = 10
    lr: float = 1e-4
    weight_decay: float = 1e-4
    groups: int = 8


class NoisyDomainClassifier(nn.Module):
    """logits(x_t, t) over (target, source)."""

    def __init__(self, channels: list[int], groups: int = 8):
        super().__init__()
        from diffusers.models.embeddings import TimestepEmbedding, Timesteps
        from diffusers.models.resnet import Downsample2D, ResnetBlock2D

        temb = 4 * channels[0]
        self.time_proj = Timesteps(channels[0], flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_embed = TimestepEmbedding(channels[0], temb)
        self.conv_in = nn.Conv2d(3, channels[0], 3, padding=1)
        blocks, previous = [], channels[0]
        for i, ch in enumerate(channels):
            blocks.append(ResnetBlock2D(in_channels=previous, out_channels=ch, temb_channels=temb, groups=groups))
            if i < len(channels) - 1:
                blocks.append(Downsample2D(ch, use_conv=True))
            previous = ch
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Sequential(nn.GroupNorm(groups, previous), nn.SiLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(previous, 2))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        emb = self.time_embed(self.time_proj(t).to(x.dtype))
        h = self.conv_in(x)
        for block in self.blocks:
            h = block(h, emb) if hasattr(block, "time_emb_proj") else block(h)
        return self.head(h)


def antithetic_timesteps(n: int, num_timesteps: int, generator: torch.Generator) -> torch.Tensor:
    """n timesteps in antithetic pairs (t, T - 1 - t), as the authors' generate_xt: t ~ U{0..T-1} for the first
    n // 2 + 1, their mirror images after them, cut to n."""
    t = torch.randint(0, num_timesteps, (n // 2 + 1,), generator=generator)
    return torch.cat([t, num_timesteps - 1 - t])[:n]


def guidance_gradient(classifier: nn.Module, x_t: torch.Tensor, t: torch.Tensor, label: int = TARGET) -> torch.Tensor:
    """grad_{x_t} log p(y = label | x_t, t), per sample (the authors' cond_fn with scale 1)."""
    with torch.enable_grad():
        x = x_t.detach().float().requires_grad_(True)
        log_p = F.log_softmax(classifier(x, t).float(), dim=-1)[:, label]
        return torch.autograd.grad(log_p.sum(), x)[0]


def train_domain_classifier(source: torch.Tensor, target: torch.Tensor, scheduler, cfg: ClassifierConfig,
                            seed: int, device: torch.device | str = "cpu") -> tuple[NoisyDomainClassifier, dict]:
    """Train on uint8 N x 3 x H x W ``source`` and ``target`` images; return the frozen classifier (eval, on the CPU)
    and its accuracy on fresh noise and t over the training images (overall, t < T/2 and t >= T/2)."""
    from domainstudio.training import pixel_batch

    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = NoisyDomainClassifier(cfg.channels, cfg.groups).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    T = scheduler.config.num_train_timesteps
    labels = torch.cat([torch.full((cfg.batch_size,), SOURCE), torch.full((cfg.batch_size,), TARGET)]).to(device)

    def batch():
        x0 = torch.cat([pixel_batch(source, cfg.batch_size, True, generator), pixel_batch(target, cfg.batch_size, True, generator)])
        t = antithetic_timesteps(len(x0), T, generator)
        return scheduler.add_noise(x0, torch.randn(x0.shape, generator=generator), t).to(device), t.to(device)

    for _ in range(cfg.steps):
        x_t, t = batch()
        loss = F.cross_entropy(model(x_t, t), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    model.eval().requires_grad_(False)
    correct, late = [], []
    with torch.no_grad():
        for _ in range(max(1, 200 // (2 * cfg.batch_size))):
            x_t, t = batch()
            correct.append(model(x_t, t).argmax(-1) == labels)
            late.append(t >= T // 2)
    correct, late = torch.cat(correct).float().cpu(), torch.cat(late).cpu()
    stats = {"classifier_accuracy": correct.mean().item(), "classifier_accuracy_t_low": correct[~late].mean().item(),
             "classifier_accuracy_t_high": correct[late].mean().item(), "classifier_final_loss": loss.item()}
    log.info("domain classifier: %s", stats)
    return model.cpu(), stats
