"""The fidelity measures of an evaluate job (classifier two-sample test; sliced Wasserstein distance of pyramid
patches; precision, recall, density, coverage) on controlled cases, with their cost on one thread.

    python benchmarks/fidelity_measures.py [--domain babies] [--n 1000] [--threads 1] [--samples FOLDER ...]

Renders ``2 n`` reference images of the domain (the reference side, as the reference set of a run) and ``n`` other
images of it, and scores the other images as they are (one distribution: 0.5 and full precision/recall expected),
under a 1 px Gaussian blur, and with the red channel shifted by 1 px (colour misregistration), with params.yaml's
evaluate settings and the released metric backbone's FID features (FID beside them for scale); ``--samples``: also
score these image folders (e.g. a model's samples; ``--domain source`` for the source models'). Prints one row per
case, the seconds all of them took (the first case includes their one-off imports) and the seconds of the SWD alone.
"""
from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
import torch
import yaml
from scipy.ndimage import gaussian_filter

from domainstudio.data import faces
from domainstudio.data.images import load_image_folder
from domainstudio.metrics.backbones import fid_features
from domainstudio.metrics.evaluate import EvaluateConfig, fidelity_record
from domainstudio.metrics.fid import fid, statistics
from domainstudio.metrics.sliced_wasserstein import SlicedWassersteinConfig, sliced_wasserstein_distance
from domainstudio.metrics.two_sample import TwoSampleConfig


def blur(images: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    return np.rint(gaussian_filter(images.astype(np.float64), sigma=(0, sigma, sigma, 0))).clip(0, 255).astype(np.uint8)


def shift_red(images: np.ndarray, pixels: int = 1) -> np.ndarray:
    out = images.copy()
    out[:, :, pixels:, 0] = images[:, :, :-pixels, 0]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--domain", default="babies"); p.add_argument("--n", type=int, default=1000)
    p.add_argument("--threads", type=int, default=1); p.add_argument("--params", default="params.yaml")
    p.add_argument("--samples", nargs="*", default=[], help="image folders to score beside the controlled cases")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    params = yaml.safe_load(open(a.params))
    ev, res = params["evaluate"], params["resolution"]
    cfg = EvaluateConfig(seed=ev["seed"], prdc_k=ev["prdc_k"], c2st=TwoSampleConfig(**ev["c2st"], seed=ev["seed"]),
                         swd=SlicedWassersteinConfig(**ev.get("swd", {}), seed=ev["seed"]))

    def render(split, n):
        return np.stack([np.asarray(faces.render(a.domain, split, i, res, params["data"]["seed"])[0]) for i in range(n)])

    reference, other = render("reference", 2 * a.n), render("benchmark", a.n)
    features = fid_features("embedded", ev["embedded_backbone"])
    ref_features = features(reference)
    mu, sigma = statistics(ref_features)
    print(f"{a.domain}, {a.n} images against {2 * a.n} reference images, {a.threads} thread(s); "
          f"c2st {dataclasses.asdict(cfg.c2st)}, swd {dataclasses.asdict(cfg.swd)}, k = {cfg.prdc_k}")
    width = max([22, *(len(f) for f in a.samples)])
    print(f"{'case':{width}s} {'FID':>6s} {'c2st':>6s} {'p-value':>8s} {'swd':>7s} {'prec':>6s} {'recall':>6s} {'dens':>6s} {'cover':>6s} {'seconds':>8s} {'swd s':>6s}")
    cases = [("same distribution", other), ("1 px Gaussian blur", blur(other)), ("red channel 1 px", shift_red(other))]
    cases += [(folder, load_image_folder(folder, res)) for folder in a.samples]
    for name, images in cases:
        feats = features(images)
        started = time.perf_counter()
        r = fidelity_record(images, reference, feats, ref_features, cfg)
        seconds = time.perf_counter() - started
        started = time.perf_counter()
        sliced_wasserstein_distance(images, reference, cfg.swd)
        swd_seconds = time.perf_counter() - started
        print(f"{name:{width}s} {fid(feats, mu, sigma):6.2f} {r['c2st_accuracy']:6.3f} {r['c2st_p_value']:8.1e} {r['swd']:7.1f} "
              f"{r['precision']:6.3f} {r['recall']:6.3f} {r['density']:6.3f} {r['coverage']:6.3f} {seconds:8.2f} {swd_seconds:6.2f}",
              flush=True)


if __name__ == "__main__":
    main()
