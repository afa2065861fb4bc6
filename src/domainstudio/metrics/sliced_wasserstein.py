"""Sliced Wasserstein distance between the Laplacian-pyramid patches of two image sets (Karras et al., "Progressive
Growing of GANs for Improved Quality, Stability, and Variation", ICLR 2018, section 5 and appendix D).

Each image's Laplacian pyramid is built with the 5-tap binomial filter [1, 4, 6, 4, 1] / 16 (reflect padding), from
the full resolution down to ``min_resolution``, whose level is the low-pass residual (32 px: a 32 px band and a
16 px residual). At every level, ``descriptors_per_image`` 7 x 7 x 3 neighbourhoods at seeded positions are the
image's descriptors. Per level, the distance between the two descriptor sets is the sliced Wasserstein-1 distance
(Rabin et al., 2011): the mean over ``directions`` random unit directions d of W1 between the projections,

    SWD = 1/|D| sum_d  W1(<a, d>, <b, d>),  W1 between two sets of n numbers = 1/n sum_i |a_(i) - b_(i)|

(the sorted values paired in order), times 1,000 as Karras et al. report it; ``swd`` is the mean over levels.

It reads pixels, not a trained network, so it shares no invariance with the embedded backbone: the finest level sees
local structure (edges, fringes, noise, blur), the coarser ones colour and shading. One departure from Karras et al.:
they normalise each set's descriptors by that set's own per-channel mean and std, which hides a colour cast or a
washed-out palette; here both sets are normalised by the reference's, so those shifts count.

Written here rather than taken from a library: no maintained package implements the pyramid and patch protocol,
and for two sets of equal size the sliced distance is one sort per direction, where POT's general
``sliced_wasserstein_distance`` goes through quantile functions for weighted sets; the tests check the sort against
scipy's one-dimensional ``wasserstein_distance``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_BINOMIAL = np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0


@dataclass
class SlicedWassersteinConfig:
    """params.yaml ``evaluate.swd`` (the seed is ``evaluate.seed``)."""
    n_per_side: int = 1000           # images drawn from each side (seeded; fewer if a side has fewer)
    descriptors_per_image: int = 16  # 7 x 7 neighbourhoods per image and level (Karras et al.: 128 on 16,384 images)
    patch: int = 7                   # neighbourhood size (Karras et al.: 7)
    min_resolution: int = 16         # the coarsest level, the low-pass residual (Karras et al.: 16)
    directions: int = 256            # random unit directions of the slicing (Karras et al.: 4 x 128)
    seed: int = 0


def _blur(x: np.ndarray) -> np.ndarray:
    """Separable binomial blur of N x C x H x W (reflect padding: scipy's "mirror", the edge pixel not repeated)."""
    from scipy.ndimage import correlate1d

    w = _BINOMIAL.astype(x.dtype)
    return correlate1d(correlate1d(x, w, axis=2, mode="mirror"), w, axis=3, mode="mirror")


def laplacian_pyramid(images: np.ndarray, min_resolution: int) -> list[np.ndarray]:
    """Levels of uint8 N x H x W x 3 ``images`` (as float32 in [0, 1]), finest first, N x 3 x h x w each: the band-pass
    differences (image - upsampled downsampled image) down to ``min_resolution``, which is the low-pass residual."""
    x = images.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255.0)
    if min(x.shape[2:]) < min_resolution:
        raise ValueError(f"swd.min_resolution {min_resolution} is larger than the {tuple(x.shape[2:])} images")
    levels = []
    while min(x.shape[2:]) // 2 >= min_resolution:
        small = _blur(x)[:, :, ::2, ::2]
        up = np.zeros_like(x)
        up[:, :, ::2, ::2] = small * np.float32(4.0)  # zero insertion; the 4 restores the mean the zeros remove
        levels.append(x - _blur(up))
        x = small
    levels.append(x)
    return levels


def patch_descriptors(level: np.ndarray, per_image: int, patch: int, rng: np.random.Generator) -> np.ndarray:
    """``per_image`` patch x patch neighbourhoods of every image of ``level`` (N x C x h x w) at seeded positions,
    flattened: (N * per_image) x (C * patch * patch)."""
    n, c, h, w = level.shape
    if patch > min(h, w):
        raise ValueError(f"swd.patch {patch} is larger than a {h} x {w} pyramid level")
    ys = rng.integers(0, h - patch + 1, size=(n, per_image))
    xs = rng.integers(0, w - patch + 1, size=(n, per_image))
    offsets = np.arange(patch)
    rows = (ys[:, :, None] + offsets)[:, :, :, None]        # n x per x patch x 1
    cols = (xs[:, :, None] + offsets)[:, :, None, :]        # n x per x 1 x patch
    img = np.arange(n)[:, None, None, None]
    out = level.transpose(0, 2, 3, 1)[img, rows, cols]      # n x per x patch x patch x C
    return out.transpose(0, 1, 4, 2, 3).reshape(n * per_image, c * patch * patch)


def sliced_wasserstein(a: np.ndarray, b: np.ndarray, directions: np.ndarray) -> float:
    """Mean over the unit ``directions`` (D x k) of the Wasserstein-1 distance between the projections of the equal-size
    point sets ``a`` and ``b`` (n x D): for each direction, the mean absolute difference of the sorted projections."""
    if a.shape != b.shape:
        raise ValueError(f"sliced_wasserstein needs equal-size sets, not {a.shape} and {b.shape}")
    pa, pb = directions.T @ a.T, directions.T @ b.T  # k x n: each direction's projections contiguous
    pa.sort(axis=1)
    pb.sort(axis=1)
    return float(np.abs(pa - pb).mean(dtype=np.float64))


def random_directions(dim: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` directions drawn uniformly on the unit sphere of R^dim, as columns."""
    v = rng.standard_normal((dim, count))
    return v / np.linalg.norm(v, axis=0, keepdims=True)


def sliced_wasserstein_distance(samples: np.ndarray, reference: np.ndarray, cfg: SlicedWassersteinConfig) -> dict:
    """SWD of ``samples`` against ``reference`` (uint8 N x H x W x 3) on their Laplacian-pyramid patches (module
    docstring). Returns ``swd`` (mean over levels, x 1e3) and ``swd_levels`` ({level resolution: SWD x 1e3})."""
    if samples.shape[1:] != reference.shape[1:]:
        raise ValueError(f"swd: samples {samples.shape[1:]} and reference {reference.shape[1:]} images differ in size")
    rng = np.random.default_rng(cfg.seed)
    n = min(cfg.n_per_side, len(samples), len(reference))
    sides = [x[np.sort(rng.permutation(len(x))[:n])] for x in (reference, samples)]
    pyramids = [laplacian_pyramid(side, cfg.min_resolution) for side in sides]
    per_level = {}
    for real_level, fake_level in zip(*pyramids):
        real = patch_descriptors(real_level, cfg.descriptors_per_image, cfg.patch, rng)
        fake = patch_descriptors(fake_level, cfg.descriptors_per_image, cfg.patch, rng)
        c = real_level.shape[1]
        shape = (len(real), c, cfg.patch * cfg.patch)  # per-channel statistics of the reference's descriptors
        mean = real.reshape(shape).mean(axis=(0, 2), dtype=np.float64)[None, :, None]
        std = real.reshape(shape).std(axis=(0, 2), dtype=np.float64)[None, :, None] + 1e-12
        real, fake = [((x.reshape(shape) - mean) / std).astype(np.float32).reshape(len(x), -1) for x in (real, fake)]
        directions = random_directions(real.shape[1], cfg.directions, rng).astype(np.float32)
        per_level[int(real_level.shape[-1])] = 1e3 * sliced_wasserstein(real, fake, directions)
    return {"swd": float(np.mean(list(per_level.values()))), "swd_levels": per_level}
