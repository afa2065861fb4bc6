"""Calibration of the fidelity measures: what each one reports for reference images under controlled, visible
degradations (metrics/degradations.py) at graded strengths, against its floor (two disjoint halves of the same
reference set) and against the spread between the methods of table 2.

Protocol, per target domain: the reference set is split into two disjoint halves A and B of ``n_per_side`` images
(seeded). Every measure compares B, or B degraded, with A, exactly as an evaluate job compares a run's samples with
the reference set: FID, KID, precision, recall, density and coverage on the FID features, the in-domain fraction from
the backbone's domain head, and the classifier two-sample test and the patch SWD on raw pixels. The floor is measured on ``splits``
different halvings (mean and std); every degradation on the first.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from domainstudio.metrics.degradations import DEGRADATIONS, TRAINING_FAMILY, degrade
from domainstudio.metrics.sliced_wasserstein import SlicedWassersteinConfig
from domainstudio.metrics.two_sample import TwoSampleConfig

# (column, direction): +1 when a larger value means further from the reference (worse fidelity), -1 when smaller
MEASURES = {"fid": 1, "kid": 1, "precision": -1, "recall": -1, "density": -1, "coverage": -1, "in_domain": -1,
            "c2st_accuracy": 1, "swd": 1}


@dataclass
class CalibrationConfig:
    """params.yaml ``evaluate.calibration`` (with ``evaluate.c2st``, ``evaluate.prdc_k`` and ``evaluate.seed`` as the
    evaluate jobs use them)."""
    n_per_side: int = 1000   # images in each half (fewer if the reference set is smaller)
    splits: int = 3          # halvings the floor is measured on
    degradations: list[str] = field(default_factory=lambda: list(DEGRADATIONS))


def family_of(degradation: str) -> str:
    """'none' for the floor, 'training' for the classic corruptions an artifact-aware backbone may learn from,
    'validation' for the artifacts seen in the sample grids (never trained on)."""
    if degradation == "none":
        return "none"
    return "training" if degradation in TRAINING_FAMILY else "validation"


def measure(fake: np.ndarray, real: np.ndarray, real_features: np.ndarray, real_stats: tuple[np.ndarray, np.ndarray], backbone,
            domain: str, c2st: TwoSampleConfig, swd: SlicedWassersteinConfig, prdc_k: int, seed: int) -> dict:
    """Every fidelity measure of the images ``fake`` against ``real`` (uint8 N x H x W x 3; ``real_features`` their FID
    features, ``real_stats`` those features' mean and covariance), as an evaluate job forms them
    (FID/KID/precision/recall/density/coverage on the backbone's FID features, in-domain from its domain head, the
    classifier two-sample test and the SWD on pixels)."""
    from domainstudio.metrics.fid import fid, kid
    from domainstudio.metrics.prdc_measures import precision_recall_density_coverage
    from domainstudio.metrics.sliced_wasserstein import sliced_wasserstein_distance
    from domainstudio.metrics.two_sample import classifier_two_sample_test

    feats = backbone.fid_features(fake)
    mu, sigma = real_stats
    in_domain = float((backbone.predict(fake)["domain"] == backbone.domain_index(domain)).mean())
    c2st_result = classifier_two_sample_test(fake, real, dataclasses.replace(c2st, seed=seed))
    return {"fid": fid(feats, mu, sigma), "kid": kid(feats, real_features, seed), "in_domain": in_domain,
            **precision_recall_density_coverage(real_features, feats, prdc_k),
            "c2st_accuracy": c2st_result["c2st_accuracy"],
            "swd": sliced_wasserstein_distance(fake, real, dataclasses.replace(swd, seed=seed))["swd"]}


def reference_halves(reference: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint seeded halves A and B of ``n`` reference images each (in their folder order): B, degraded or not,
    is scored against A."""
    order = np.random.default_rng(seed).permutation(len(reference))
    return reference[np.sort(order[:n])], reference[np.sort(order[n:2 * n])]


def calibrate(reference: np.ndarray, backbone, domain: str, cfg: CalibrationConfig, c2st: TwoSampleConfig,
              swd: SlicedWassersteinConfig, prdc_k: int, seed: int = 0, log=print) -> pd.DataFrame:
    """One row per (degradation, strength, split): every measure of B (degraded) against A (module docstring)."""
    from domainstudio.metrics.fid import statistics

    unknown = [d for d in cfg.degradations if d not in DEGRADATIONS]
    if unknown:
        raise ValueError(f"evaluate.calibration.degradations: unknown {unknown}; expected some of {sorted(DEGRADATIONS)}")
    n = min(cfg.n_per_side, len(reference) // 2)
    if n < prdc_k + 1:
        raise ValueError(f"calibration needs more than {2 * (prdc_k + 1)} reference images, not {len(reference)}")
    rows = []
    for split in range(cfg.splits):
        a, b = reference_halves(reference, n, seed + split)
        a_features = backbone.fid_features(a)
        a_stats = statistics(a_features)
        conditions = [("none", 0.0)]
        if split == 0:
            conditions += [(d, s) for d in cfg.degradations for s in DEGRADATIONS[d][1]]
        for name, strength in conditions:
            fake = b if name == "none" else degrade(b, name, strength, seed=seed)
            rows.append({"domain": domain, "degradation": name, "family": family_of(name), "strength": strength,
                         "level": 0 if name == "none" else DEGRADATIONS[name][1].index(strength) + 1, "split": split,
                         "n_per_side": n, **measure(fake, a, a_features, a_stats, backbone, domain, c2st, swd, prdc_k, seed)})
            log(f"{domain} {name} {strength} split {split}: fid {rows[-1]['fid']:.2f} c2st {rows[-1]['c2st_accuracy']:.3f} "
                f"swd {rows[-1]['swd']:.1f}")
    return pd.DataFrame(rows)


def method_spread(table2: pd.DataFrame, domain: str) -> dict[str, dict]:
    """Per measure, the measured methods' means on ``domain`` in table 2: their range (min, max) and the median std
    over seeds (what a difference between two methods must exceed to be read)."""
    rows = table2[(table2["source"] == "measured") & (table2["domain"] == domain)]
    out = {}
    for m in MEASURES:
        if m not in rows or rows[m].isna().all():
            continue
        std_col = f"{m}_std_seeds"
        std = float(rows[std_col].median()) if std_col in rows and not rows[std_col].isna().all() else float("nan")
        out[m] = {"min": float(rows[m].min()), "max": float(rows[m].max()), "median_std_seeds": std,
                  "methods": int(rows[m].notna().sum())}
    return out


def sensitivity(calibration: pd.DataFrame, spread: dict[str, dict]) -> pd.DataFrame:
    """Each degradation's shift of each measure from the floor mean, in the direction of worse fidelity, divided by
    the range of the methods' means (1: as large as the whole spread between methods; NaN without a spread)."""
    floor = calibration[calibration["degradation"] == "none"]
    rows = calibration[calibration["degradation"] != "none"].copy()
    for m, sign in MEASURES.items():
        if m not in rows:
            continue
        span = spread.get(m, {})
        width = span.get("max", np.nan) - span.get("min", np.nan)
        rows[m] = sign * (rows[m] - floor[m].mean()) / (width if width and width > 0 else np.nan)
    return rows


def markdown(calibration: pd.DataFrame, spread: dict[str, dict], backbone_name: str) -> str:
    """The calibration of one domain as a Markdown table: values per degradation and strength, the floor (mean +- std
    over splits) and the spread between methods."""
    cols = [m for m in MEASURES if m in calibration]
    domain = calibration["domain"].iloc[0]
    floor = calibration[calibration["degradation"] == "none"]
    fmt = lambda v: "" if pd.isna(v) else (f"{v:.1f}" if abs(v) >= 10 else f"{v:.3f}")  # noqa: E731
    lines = [f"### {domain} ({backbone_name} backbone, {int(calibration['n_per_side'].iloc[0])} images a side)", "",
             "| degradation | family | strength | " + " | ".join(cols) + " |", "|---|---|---|" + "---|" * len(cols),
             "| none (floor, mean +- std over %d splits) | | | " % len(floor)
             + " | ".join(f"{fmt(floor[c].mean())} +- {fmt(floor[c].std(ddof=1)) if len(floor) > 1 else ''}" for c in cols) + " |"]
    for _, r in calibration[calibration["degradation"] != "none"].iterrows():
        lines.append(f"| {r['degradation']} | {r['family']} | {r['strength']:g} | " + " | ".join(fmt(r[c]) for c in cols) + " |")
    if spread:
        lines.append("| methods in table 2: min - max (median std over seeds) | | | " + " | ".join(
            f"{fmt(spread[c]['min'])} - {fmt(spread[c]['max'])} ({fmt(spread[c]['median_std_seeds'])})" if c in spread else ""
            for c in cols) + " |")
    return "\n".join(lines) + "\n"
