"""How well a source model (the DDPM, or the GAN of the baselines) draws its source domain: FID of its samples
against freshly rendered source images.

The fresh images are split ``fresh`` of the embedded world's source domain, which no training set uses, so the FID
does not reward memorising the training images. The floor of the measurement is the FID between two disjoint fresh
sets of the same size (what a perfect model would score with this many samples). Features: the embedded metric
backbone's FID features (metrics/embedded_backbone.py), the yardstick of every embedded-world FID. The models are
sampled for it by the release's quality curve (release/quality_curve.py).
"""
from __future__ import annotations

import numpy as np

from domainstudio.metrics.fid import fid, statistics

FRESH_SPLIT = "fresh"


def fresh_source_images(world: str, count: int, resolution: int, seed: int, offset: int = 0) -> np.ndarray:
    """Images ``offset .. offset + count - 1`` of the world's source domain, split ``fresh`` (uint8 N x H x W x 3)."""
    from domainstudio.data.world import world_module

    module = world_module(world)
    return np.stack([np.asarray(module.render(module.SOURCE, FRESH_SPLIT, i, resolution, seed)[0])
                     for i in range(offset, offset + count)])


class SourceQuality:
    """FID against ``count`` fresh source images, with the floor of two disjoint fresh sets."""

    def __init__(self, features, world: str, resolution: int, data_seed: int, count: int):
        self.features = features
        reference = features(fresh_source_images(world, count, resolution, data_seed))
        self.mu, self.sigma = statistics(reference)
        self.floor = fid(features(fresh_source_images(world, count, resolution, data_seed, offset=count)), self.mu, self.sigma)

    def fid(self, images: np.ndarray) -> float:
        return fid(self.features(images), self.mu, self.sigma)
