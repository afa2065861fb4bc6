"""The sliced Wasserstein distance of Laplacian-pyramid patches (Karras et al. 2018) against written-out references:
the binomial pyramid as an explicit 2-D convolution, the patches read one by one, W1 from scipy, and the whole
protocol composed from those pieces; plus its behaviour on identical, shifted and tinted image sets."""
import numpy as np
import pytest
from scipy import ndimage
from scipy.stats import wasserstein_distance

from domainstudio.metrics.sliced_wasserstein import (SlicedWassersteinConfig, laplacian_pyramid, patch_descriptors,
                                                     random_directions, sliced_wasserstein, sliced_wasserstein_distance)


def written_out_blur(img: np.ndarray) -> np.ndarray:
    """H x W blurred by the 5 x 5 kernel outer([1, 4, 6, 4, 1]) / 256, mirrored at the border without repeating
    the edge pixel (index -1 reads pixel 1)."""
    k = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]) / 256.0
    h, w = img.shape
    mirror = lambda i, n: -i if i < 0 else (2 * (n - 1) - i if i >= n else i)  # noqa: E731
    out = np.zeros_like(img)
    for y in range(h):
        for x in range(w):
            out[y, x] = sum(k[dy + 2, dx + 2] * img[mirror(y + dy, h), mirror(x + dx, w)]
                            for dy in range(-2, 3) for dx in range(-2, 3))
    return out


def written_out_pyramid(image: np.ndarray, min_resolution: int) -> list[np.ndarray]:
    """One uint8 H x W x 3 image's levels, C x h x w: band = x - 4 * blur(x with zeros between the pixels of
    blur(x)[::2, ::2]); the last level is the low-pass residual at min_resolution."""
    x = image.transpose(2, 0, 1).astype(np.float64) / 255.0
    levels = []
    while x.shape[1] // 2 >= min_resolution:
        small = np.stack([written_out_blur(c)[::2, ::2] for c in x])
        up = np.zeros_like(x)
        up[:, ::2, ::2] = small
        levels.append(x - np.stack([4.0 * written_out_blur(c) for c in up]))
        x = small
    return levels + [x]


def _images(n, size=16, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size
    base = np.stack([np.sin(6 * xx + 3 * yy), np.cos(4 * yy), xx * yy], -1)
    return np.clip(127 + 60 * base[None] + rng.normal(0, 25, (n, size, size, 3)), 0, 255).astype(np.uint8)


def test_pyramid_equals_the_written_out_binomial_pyramid_and_reconstructs_the_image():
    images = _images(2)
    ours = laplacian_pyramid(images, 4)
    assert [lvl.shape for lvl in ours] == [(2, 3, 16, 16), (2, 3, 8, 8), (2, 3, 4, 4)]
    for i in range(2):
        for mine, ref in zip(ours, written_out_pyramid(images[i], 4)):
            assert mine[i] == pytest.approx(ref, abs=1e-6)  # float32
    flat = laplacian_pyramid(np.full((1, 16, 16, 3), 200, np.uint8), 8)   # a constant image: no band, the residual
    assert np.abs(flat[0]).max() < 1e-6 and flat[1] == pytest.approx(np.full((1, 3, 8, 8), 200 / 255), abs=1e-6)
    with pytest.raises(ValueError, match="min_resolution 32"):
        laplacian_pyramid(images, 32)


def test_patch_descriptors_are_the_flattened_neighbourhoods_at_the_drawn_positions():
    level = np.random.default_rng(3).normal(size=(3, 2, 9, 7))
    ours = patch_descriptors(level, 4, 3, np.random.default_rng(5))
    rng = np.random.default_rng(5)  # the same draws: rows first, then columns, per image and descriptor
    ys, xs = rng.integers(0, 9 - 3 + 1, size=(3, 4)), rng.integers(0, 7 - 3 + 1, size=(3, 4))
    expected = [level[i, :, ys[i, j]:ys[i, j] + 3, xs[i, j]:xs[i, j] + 3].reshape(-1) for i in range(3) for j in range(4)]
    assert ours == pytest.approx(np.stack(expected), abs=0)
    with pytest.raises(ValueError, match="patch 11"):
        patch_descriptors(level, 1, 11, rng)


def test_sliced_wasserstein_is_the_mean_one_dimensional_w1_over_directions():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(50, 6)), rng.normal(0.5, 2.0, size=(50, 6))
    dirs = random_directions(6, 7, rng)
    assert np.linalg.norm(dirs, axis=0) == pytest.approx(np.ones(7))
    expected = np.mean([wasserstein_distance(a @ d, b @ d) for d in dirs.T])
    assert sliced_wasserstein(a, b, dirs) == pytest.approx(expected, rel=1e-12)
    shift = np.array([3.0, 0, 0, 0, 0, 0])                   # a translation c: W1 along d is |<c, d>|
    assert sliced_wasserstein(a, a + shift, dirs) == pytest.approx(np.mean(np.abs(3.0 * dirs[0])), rel=1e-12)
    with pytest.raises(ValueError, match="equal-size"):
        sliced_wasserstein(a, b[:10], dirs)


def test_the_whole_protocol_equals_its_written_out_composition():
    samples, reference = _images(5, seed=1), _images(6, seed=2)
    cfg = SlicedWassersteinConfig(n_per_side=4, descriptors_per_image=3, patch=3, min_resolution=8, directions=5, seed=7)
    ours = sliced_wasserstein_distance(samples, reference, cfg)
    rng = np.random.default_rng(7)   # the draws in the protocol's order
    sides = [x[np.sort(rng.permutation(len(x))[:4])] for x in (reference, samples)]
    pyramids = [[written_out_pyramid(img, 8) for img in side] for side in sides]
    expected = {}
    for lvl in range(2):
        desc = [patch_descriptors(np.stack([p[lvl] for p in pyr]), 3, 3, rng) for pyr in pyramids]
        real, fake = (d.reshape(len(d), 3, 9) for d in desc)
        mean, std = real.mean(axis=(0, 2)), real.std(axis=(0, 2))  # the reference's per-channel statistics, both sides
        real, fake = ((x - mean[None, :, None]) / std[None, :, None] for x in (real, fake))
        dirs = random_directions(27, 5, rng)
        w1 = [wasserstein_distance(real.reshape(len(real), -1) @ d, fake.reshape(len(fake), -1) @ d) for d in dirs.T]
        expected[pyramids[0][0][lvl].shape[-1]] = 1e3 * np.mean(w1)
    assert ours["swd_levels"] == pytest.approx(expected, rel=1e-4)   # float32 against float64
    assert ours["swd"] == pytest.approx(np.mean(list(expected.values())), rel=1e-4)


def test_swd_floor_blur_and_a_tint_that_per_set_normalisation_would_hide():
    cfg = SlicedWassersteinConfig(n_per_side=200, descriptors_per_image=8, directions=64, min_resolution=8)
    a, b = _images(200, seed=10), _images(200, seed=11)
    floor = sliced_wasserstein_distance(b, a, cfg)["swd"]
    blurred = ndimage.uniform_filter(b.astype(float), size=(1, 3, 3, 1), mode="reflect").round().astype(np.uint8)
    assert sliced_wasserstein_distance(blurred, a, cfg)["swd"] > 3 * floor
    tinted = np.clip(b.astype(int) + [12, 0, -12], 0, 255).astype(np.uint8)
    levels = sliced_wasserstein_distance(tinted, a, cfg)["swd_levels"]
    assert levels[8] > 5 * floor          # the residual level sees the tint (its descriptors are shifted in colour)
    assert levels[16] < 2 * floor         # the band-pass level does not: a constant shift has no band
    with pytest.raises(ValueError, match="differ in size"):
        sliced_wasserstein_distance(a[:, :8], a, cfg)
