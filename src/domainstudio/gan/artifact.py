"""The GAN artifact: a folder with ``gan.pt`` (network config, resolution, generator and discriminator weights),
written atomically by the CLI; the source GAN and every adapted GAN use the same format."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from domainstudio.gan.networks import Discriminator, GanNetworkConfig, Generator

FILE = "gan.pt"


class GanArtifactError(ValueError):
    """A missing or unreadable GAN folder; the message names it."""


def build_gan(cfg: GanNetworkConfig, resolution: int, seed: int):
    """A freshly initialised generator and discriminator; the weights depend only on ``seed``."""
    torch.manual_seed(seed)
    return Generator(cfg, resolution), Discriminator(cfg, resolution)


def save_gan(folder: str | Path, generator, discriminator) -> None:
    """Write ``folder/gan.pt`` (atomically: a killed run leaves no truncated file)."""
    from domainstudio.atomic import atomic_file

    with atomic_file(Path(folder) / FILE) as tmp:
        torch.save({"network": asdict(generator.cfg), "resolution": generator.resolution,
                    "generator": generator.state_dict(), "discriminator": discriminator.state_dict()}, tmp)


def load_gan(folder: str | Path):
    path = Path(folder) / FILE
    if not path.is_file():
        raise GanArtifactError(f"{path} not found: {folder} is not a GAN folder (written by `domainstudio pretrain-gan`/`adapt-gan`)")
    state = torch.load(path, map_location="cpu", weights_only=True)
    generator, discriminator = build_gan(GanNetworkConfig(**state["network"]), state["resolution"], 0)
    generator.load_state_dict(state["generator"])
    discriminator.load_state_dict(state["discriminator"])
    return generator, discriminator


@torch.no_grad()
def sample_gan(generator, n: int, seed: int, batch_size: int = 500, device: str = "auto") -> np.ndarray:
    """n images (uint8 N x H x W x 3) from z ~ N(0, I) drawn with ``seed`` on the CPU; neither the batch size nor
    the device changes them beyond rounding."""
    from domainstudio.devices import resolve_device

    target = resolve_device(device)
    generator.eval().to(target)
    z = torch.randn(n, generator.cfg.z_dim, generator=torch.Generator().manual_seed(seed))
    out = [generator(z[i:i + batch_size].to(target)).cpu() for i in range(0, n, batch_size)]
    generator.cpu()
    x = torch.cat(out).clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).contiguous().numpy()
