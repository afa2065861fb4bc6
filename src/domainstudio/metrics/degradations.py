"""Controlled, visible image degradations at graded strengths: the calibration of the fidelity measures
(metrics/calibration.py) and, for the artifact-aware metric backbone, its training augmentations.

Two disjoint families, so that a backbone trained to notice one is judged on the other:

- ``TRAINING_FAMILY``, the classic low-level corruptions: Gaussian blur, Gaussian noise, JPEG, resampling
  (down and up again);
- ``VALIDATION_FAMILY``, the artifacts seen in this project's sample grids, never used to train anything:
  colour misregistration and edge fringes (the rainbow halos along the GAN sketches' lines), blotches (the GANs'
  low-frequency colour stains on faces and backgrounds), smears (the GANs' warped features), wash-out (the pale,
  low-contrast faces of some DomainStudio runs) and colour casts (the tinted sketch paper of DomainStudio runs).

Every function maps float images N x 3 x H x W in [0, 1] to the same, clipped to [0, 1]; the random ones draw from
the ``numpy`` generator they are given, so a degradation is reproducible by seed. ``degrade`` applies one by name to
uint8 N x H x W x 3 images, as stored on disk.
"""
from __future__ import annotations

import io
import math
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

Degradation = Callable[[torch.Tensor, float, np.random.Generator], torch.Tensor]


def gaussian_blur(x: torch.Tensor, sigma: float, rng=None) -> torch.Tensor:
    """Separable Gaussian blur of std ``sigma`` pixels (reflect padding)."""
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    x = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def gaussian_noise(x: torch.Tensor, std: float, rng: np.random.Generator) -> torch.Tensor:
    """Independent Gaussian noise of std ``std`` (on the [0, 1] scale) on every pixel and channel."""
    return (x + std * torch.from_numpy(rng.standard_normal(x.shape)).to(x.dtype)).clamp(0, 1)


def jpeg(x: torch.Tensor, quality: float, rng=None) -> torch.Tensor:
    """JPEG compression at ``quality`` (PIL, 4:2:0 chroma subsampling), decoded again."""
    out = []
    for img in to_uint8(x):
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=int(quality))
        out.append(np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")))
    return to_float(np.stack(out))


def resample(x: torch.Tensor, factor: float, rng=None) -> torch.Tensor:
    """Downsampling by ``factor`` (antialiased bilinear), then bilinear upsampling to the original size."""
    size = x.shape[-1]
    small = F.interpolate(x, size=max(2, round(size / factor)), mode="bilinear", align_corners=False, antialias=True)
    return F.interpolate(small, size=size, mode="bilinear", align_corners=False).clamp(0, 1)


def _shift(x: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor) -> torch.Tensor:
    """x sampled at (u + dx, v + dy), with per-pixel displacements in pixels (N x H x W), border replicated. Nearest
    neighbour, not bilinear: an interpolated shift would also blur, and blur belongs to the training family."""
    n, _, h, w = x.shape
    v, u = torch.meshgrid(torch.arange(h, dtype=x.dtype), torch.arange(w, dtype=x.dtype), indexing="ij")
    gx = 2 * (u + dx + 0.5) / w - 1
    gy = 2 * (v + dy + 0.5) / h - 1
    return F.grid_sample(x, torch.stack([gx, gy], -1).expand(n, h, w, 2), mode="nearest", padding_mode="border", align_corners=False)


def colour_misregistration(x: torch.Tensor, pixels: float, rng=None) -> torch.Tensor:
    """The red channel moved ``pixels`` (whole pixels) to the right and the blue channel as far to the left."""
    n, _, h, w = x.shape
    zero = torch.zeros(n, h, w, dtype=x.dtype)
    red = _shift(x[:, :1], zero - pixels, zero)
    blue = _shift(x[:, 2:], zero + pixels, zero)
    return torch.cat([red, x[:, 1:2], blue], 1).clamp(0, 1)


def _luminance(x: torch.Tensor) -> torch.Tensor:
    return (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)


def _smooth_field(rng: np.random.Generator, shape: tuple[int, ...], cells: int, size: int) -> torch.Tensor:
    """A smooth random field: standard normal values on a ``cells`` x ``cells`` grid, bicubically upsampled."""
    coarse = torch.from_numpy(rng.standard_normal((*shape, cells, cells))).float()
    return F.interpolate(coarse, size=size, mode="bicubic", align_corners=False)


def edge_fringe(x: torch.Tensor, amount: float, rng: np.random.Generator) -> torch.Tensor:
    """Colour fringes along edges: a saturated random colour field, fine-grained (8 x 8 cells), added in proportion
    to the local edge strength (luminance gradient magnitude, normalised per image to a maximum of 1)."""
    lum = _luminance(x)
    gx = F.pad(lum[..., :, 1:] - lum[..., :, :-1], (0, 1, 0, 0))
    gy = F.pad(lum[..., 1:, :] - lum[..., :-1, :], (0, 0, 0, 1))
    edges = gaussian_blur((gx ** 2 + gy ** 2).sqrt(), 0.7)
    edges = edges / edges.amax((2, 3), keepdim=True).clamp_min(1e-6)
    colour = _smooth_field(rng, (x.shape[0], 3), 8, x.shape[-1])
    colour = colour / colour.abs().amax((1, 2, 3), keepdim=True).clamp_min(1e-6)
    return (x + amount * edges * colour).clamp(0, 1)


def blotches(x: torch.Tensor, amount: float, rng: np.random.Generator) -> torch.Tensor:
    """Low-frequency colour stains: a smooth random colour field (4 x 4 cells) of std ``amount`` added."""
    return (x + amount * _smooth_field(rng, (x.shape[0], 3), 4, x.shape[-1])).clamp(0, 1)


def smear(x: torch.Tensor, pixels: float, rng: np.random.Generator) -> torch.Tensor:
    """A smooth random warp (4 x 4 cells of displacement, nearest-neighbour) whose displacements have std ``pixels``."""
    d = pixels * _smooth_field(rng, (x.shape[0], 2), 4, x.shape[-1])
    return _shift(x, d[:, 0], d[:, 1]).clamp(0, 1)


def wash_out(x: torch.Tensor, amount: float, rng=None) -> torch.Tensor:
    """Each image blended by ``amount`` towards the grey of its mean luminance: less contrast and saturation."""
    grey = _luminance(x).mean((2, 3), keepdim=True)
    return (1 - amount) * x + amount * grey


def colour_cast(x: torch.Tensor, amount: float, rng: np.random.Generator) -> torch.Tensor:
    """A random colour per image (unit vector in RGB, zero mean over channels) of size ``amount`` added everywhere."""
    c = torch.from_numpy(rng.standard_normal((x.shape[0], 3))).to(x.dtype)
    c = c - c.mean(1, keepdim=True)
    c = c / c.norm(dim=1, keepdim=True).clamp_min(1e-6)
    return (x + amount * c[:, :, None, None]).clamp(0, 1)


# name -> (function, strengths from just visible to glaring at 32 px, what the strength means)
TRAINING_FAMILY: dict[str, tuple[Degradation, tuple[float, ...], str]] = {
    "blur": (gaussian_blur, (0.5, 1.0, 1.5), "Gaussian std, px"),
    "noise": (gaussian_noise, (0.03, 0.06, 0.1), "std on the [0, 1] scale"),
    "jpeg": (jpeg, (50, 30, 20), "JPEG quality"),
    "resample": (resample, (1.5, 2.0, 3.0), "downsampling factor"),
}
VALIDATION_FAMILY: dict[str, tuple[Degradation, tuple[float, ...], str]] = {
    "misregistration": (colour_misregistration, (1.0, 2.0, 3.0), "red/blue shift, px"),
    "edge_fringe": (edge_fringe, (0.15, 0.3, 0.6), "fringe amplitude"),
    "blotches": (blotches, (0.04, 0.08, 0.16), "std of the colour field"),
    "smear": (smear, (0.5, 1.0, 2.0), "std of the displacement, px"),
    "wash_out": (wash_out, (0.15, 0.3, 0.5), "blend towards grey"),
    "colour_cast": (colour_cast, (0.04, 0.08, 0.16), "size of the colour offset"),
}
DEGRADATIONS = {**TRAINING_FAMILY, **VALIDATION_FAMILY}


def to_float(images: np.ndarray) -> torch.Tensor:
    """uint8 N x H x W x 3 -> float N x 3 x H x W in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """float N x 3 x H x W in [0, 1] -> uint8 N x H x W x 3 (rounded)."""
    return (x.clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def degrade(images: np.ndarray, name: str, strength: float, seed: int = 0) -> np.ndarray:
    """``images`` (uint8 N x H x W x 3) under the degradation ``name`` at ``strength``, reproducible by ``seed``."""
    if name not in DEGRADATIONS:
        raise ValueError(f"unknown degradation {name!r}; expected one of {sorted(DEGRADATIONS)}")
    fn = DEGRADATIONS[name][0]
    return to_uint8(fn(to_float(images), strength, np.random.default_rng(seed)))
