"""Classifier two-sample test (Lopez-Paz and Oquab, "Revisiting Classifier Two-Sample Tests", ICLR 2017).

A small convnet, trained from scratch on raw pixels, learns to tell a run's samples from reference images; its
accuracy on held-out images of both sides is the statistic (0.5: the classifier cannot tell them apart). Unlike
FID/KID and precision/recall/density/coverage it does not read any frozen backbone's features, so it does not share
that backbone's invariances. Under the null hypothesis (both sides from one distribution) the number of correct
held-out predictions is Binomial(n_test, 1/2) (the paper's section 2); ``c2st_p_value`` is its one-sided p-value.

Written here rather than taken from a library: the known implementations (e.g. in the ``sbi`` package) train an MLP
on feature vectors, where an image test needs a convolution at full resolution to see pixel-level artifacts.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class TwoSampleConfig:
    """The classifier two-sample test's settings (params.yaml ``evaluate.c2st``; the seed is ``evaluate.seed``)."""
    n_per_side: int = 1000           # images drawn from each side (seeded subsample; fewer if a side has fewer)
    test_fraction: float = 0.5       # held out of each side for the accuracy (Lopez-Paz and Oquab: half)
    epochs: int = 16
    batch_size: int = 32
    lr: float = 0.002                # Adam
    channels: tuple[int, ...] = (16, 32, 64)   # convs: the first at full resolution, each next one at stride 2
    seed: int = 0


def _classifier(channels: tuple[int, ...]):
    """Convolutions (3x3; the first at full resolution so that one-pixel artifacts stay visible, then stride 2),
    global average pooling and one logit: "samples" against "reference"."""
    from torch import nn

    layers, c_in = [], 3
    for i, c in enumerate(channels):
        layers += [nn.Conv2d(c_in, c, 3, stride=1 if i == 0 else 2, padding=1), nn.ReLU()]
        c_in = c
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, 1))


def _split(n_side: int, test_fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Indices of one side's training and held-out images."""
    order = rng.permutation(n_side)
    n_test = int(round(n_side * test_fraction))
    if not 0 < n_test < n_side:
        raise ValueError(f"c2st.test_fraction {test_fraction} of {n_side} images per side leaves no training or test image")
    return order[n_test:], order[:n_test]


def classifier_two_sample_test(samples: np.ndarray, reference: np.ndarray, cfg: TwoSampleConfig) -> dict:
    """Held-out accuracy of a convnet trained to tell ``samples`` (label 1) from ``reference`` (label 0).

    Both are uint8 N x H x W x 3. The same number of images is drawn from each side (balanced classes, chance 0.5),
    each side split into training and held-out images. Deterministic for a seed and thread count; the global torch
    random state is left as it was. Returns ``c2st_accuracy``, its binomial standard error ``c2st_std``, the
    one-sided binomial p-value ``c2st_p_value`` against chance, ``c2st_n_train`` and ``c2st_n_test`` (both sides)."""
    import torch
    from scipy.stats import binomtest

    if samples.shape[1:] != reference.shape[1:]:
        raise ValueError(f"c2st: samples {samples.shape[1:]} and reference {reference.shape[1:]} images differ in size")
    rng = np.random.default_rng(cfg.seed)
    n = min(cfg.n_per_side, len(samples), len(reference))
    sides = [x[np.sort(rng.permutation(len(x))[:n])] for x in (reference, samples)]
    splits = [_split(n, cfg.test_fraction, rng) for _ in sides]

    def part(which: int):
        x = np.concatenate([side[split[which]] for side, split in zip(sides, splits)])
        y = np.concatenate([np.full(len(split[which]), label, np.float32) for label, split in enumerate(splits)])
        return torch.from_numpy(x).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0), torch.from_numpy(y)

    (x_train, y_train), (x_test, y_test) = part(0), part(1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = _classifier(tuple(cfg.channels))
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        loss_fn = torch.nn.BCEWithLogitsLoss()
        model.train()
        for _ in range(cfg.epochs):
            for idx in torch.randperm(len(x_train)).split(cfg.batch_size):
                opt.zero_grad(set_to_none=True)
                loss_fn(model(x_train[idx]).squeeze(1), y_train[idx]).backward()
                opt.step()
        model.eval()
        with torch.no_grad():
            predicted = torch.cat([model(b).squeeze(1) > 0 for b in x_test.split(500)])
    correct = int((predicted == y_test.bool()).sum())
    n_test = len(y_test)
    accuracy = correct / n_test
    return {"c2st_accuracy": accuracy, "c2st_std": float(np.sqrt(accuracy * (1 - accuracy) / n_test)),
            "c2st_p_value": float(binomtest(correct, n_test, 0.5, alternative="greater").pvalue),
            "c2st_n_train": len(y_train), "c2st_n_test": n_test}
