"""Does the two-sample test see local artifacts or the palette? The same test on colour-normalised images.

    python experiments/palette_free_c2st.py --domain babies --out experiments/out/palette_free_c2st
(after the three-seed tables: `snakemake --cores all results/table2.csv --configfile config/baselines.yaml
config/seeds3.yaml`.)

The classifier two-sample test (metrics/two_sample.py) tells samples from reference images by anything: a local
artifact or a global shift of the palette. Here every image of both sides is first normalised per channel to zero
mean and unit std over its own pixels (``normalise``), which removes a tint, a change of brightness or contrast and a
per-channel gain, and keeps where the colours are: edges, textures, fringes, blotches, the layout of light and dark.
Two parts, each printed as a table and written as CSV into ``--out``:

- calibration: the reference set split in two halves (as the calibration of docs/metrics.md), half B degraded by each
  degradation at its three strengths and tested against half A, raw and normalised: what normalising hides;
- runs: every run's samples (samples/<world>/<domain>/<K>shot/<method>/seed<s>/images) against the reference set,
  raw (reproducing the evaluate job's c2st_accuracy: same settings, same seed) and normalised; mean +- std over seeds.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from domainstudio.data.images import load_image_folder
from domainstudio.devices import set_threads
from domainstudio.metrics.calibration import reference_halves
from domainstudio.metrics.degradations import DEGRADATIONS, degrade
from domainstudio.metrics.two_sample import TwoSampleConfig, classifier_two_sample_test

SCALE = 40.0  # normalised values (unit std) on the test's 0..255 input scale, around its centre 127.5


def normalise(images: np.ndarray) -> np.ndarray:
    """Each image, each channel, to zero mean and unit std over the image's pixels (a flat channel stays 0); returned
    on the 0..255 scale the test reads (float, 127.5 + SCALE * z)."""
    x = images.astype(np.float64)
    mean = x.mean(axis=(1, 2), keepdims=True)
    std = x.std(axis=(1, 2), keepdims=True)
    z = np.where(std > 0, (x - mean) / np.maximum(std, 1e-12), 0.0)
    return (127.5 + SCALE * z).astype(np.float32)


def both(samples: np.ndarray, reference: np.ndarray, cfg: TwoSampleConfig) -> dict:
    raw = classifier_two_sample_test(samples, reference, cfg)["c2st_accuracy"]
    free = classifier_two_sample_test(normalise(samples), normalise(reference), cfg)["c2st_accuracy"]
    return {"c2st_raw": raw, "c2st_normalised": free}


def calibration(reference: np.ndarray, cfg: TwoSampleConfig, n: int, degradations: list[str], seed: int) -> pd.DataFrame:
    a, b = reference_halves(reference, n, seed)   # the calibration's first halving
    rows = [{"degradation": "none", "strength": 0.0, **both(b, a, cfg)}]
    for name in degradations:
        for strength in DEGRADATIONS[name][1]:
            rows.append({"degradation": name, "strength": strength, **both(degrade(b, name, strength, seed=seed), a, cfg)})
            print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def runs(root: Path, world: str, domain: str, shots: int, reference: np.ndarray, cfg: TwoSampleConfig, resolution: int) -> pd.DataFrame:
    rows = []
    for folder in sorted((root / "samples" / world / domain / f"{shots}shot").glob("*/seed*/images")):
        method, seed = folder.parent.parent.name, int(folder.parent.name.removeprefix("seed"))
        rows.append({"method": method, "seed": seed, **both(load_image_folder(folder, resolution), reference, cfg)})
        print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--domain", required=True)
    p.add_argument("--world", default="faces")
    p.add_argument("--shots", type=int, default=10)
    p.add_argument("--root", default=".", help="the workspace whose samples/ and data/ are read")
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", required=True)
    p.add_argument("--skip-calibration", action="store_true")
    a = p.parse_args()
    set_threads(a.threads)
    params = yaml.safe_load(Path(a.params).read_text())
    ev = params["evaluate"]
    cfg = TwoSampleConfig(**{**ev.get("c2st", {}), "seed": ev["seed"]})
    root, out = Path(a.root), Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    reference = load_image_folder(root / "data" / a.world / a.domain / "reference", params["resolution"])
    if not a.skip_calibration:
        cal = calibration(reference, cfg, ev["calibration"]["n_per_side"], ev["calibration"]["degradations"], ev["seed"])
        cal.to_csv(out / f"{a.domain}_calibration.csv", index=False, float_format="%.4f")
        print(cal.to_markdown(index=False, floatfmt=".3f"))
    r = runs(root, a.world, a.domain, a.shots, reference, cfg, params["resolution"])
    r.to_csv(out / f"{a.domain}_runs.csv", index=False, float_format="%.4f")
    summary = r.groupby("method")[["c2st_raw", "c2st_normalised"]].agg(["mean", "std", "count"])
    print(summary.to_markdown(floatfmt=".3f"))


if __name__ == "__main__":
    main()
