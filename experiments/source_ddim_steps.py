"""The source model's FID against fresh source images for several DDIM step counts (the evidence for
sample.ddim_steps beside the adapted runs' tables, docs/evidence.md).

    python experiments/source_ddim_steps.py --steps 10 20 50
Samples ``--samples`` images of the released source DDPM per step count (same seed, so the same initial noise) and
prints their FID against as many fresh source images with the released metric backbone, and the floor (two
disjoint fresh sets): the measurement of the release's manifest (release/quality_curve.py) at other step counts.
"""
from __future__ import annotations

import argparse
import time

import torch
import yaml

from domainstudio.metrics.embedded_backbone import EmbeddedBackbone
from domainstudio.metrics.source_quality import SourceQuality
from domainstudio.models.source import load_source
from domainstudio.release.quality_curve import SourceQualityConfig, sample_source


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, nargs="+", default=[10, 20, 50])
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--samples", type=int, default=2000)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    params = yaml.safe_load(open(a.params))
    torch.set_num_threads(a.threads)
    unet, scheduler = load_source(params["source"]["pretrained"])
    backbone = EmbeddedBackbone.load(params["evaluate"]["embedded_backbone"])
    quality = SourceQuality(backbone.fid_features, params["world"], params["resolution"], params["data"]["seed"], a.samples)
    print(f"{a.samples} samples against {a.samples} fresh source images; floor {quality.floor:.2f}")
    print("ddim_steps  FID    seconds")
    for steps in a.steps:
        start = time.perf_counter()
        images = sample_source(unet, scheduler, SourceQualityConfig(samples=a.samples, ddim_steps=steps))
        print(f"{steps:10d}  {quality.fid(images):5.2f}  {time.perf_counter() - start:7.0f}")


if __name__ == "__main__":
    main()
