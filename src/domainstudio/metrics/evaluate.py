"""One run's metrics, as the evaluate rule and the experiments compute them: Intra-LPIPS with the near-copy
fraction (CDC's protocol, metrics/intra_lpips.py), FID/KID against a reference set's cached statistics, the fidelity
measures (a classifier two-sample test on raw pixels, metrics/two_sample.py; precision, recall, density and coverage
on the FID features, metrics/prdc_measures.py; the sliced Wasserstein distance of Laplacian-pyramid patches,
metrics/sliced_wasserstein.py) and, on embedded worlds, the ground-truth factor diversity and
in-domain fraction (metrics/diversity.py)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from domainstudio.metrics.sliced_wasserstein import SlicedWassersteinConfig
from domainstudio.metrics.two_sample import TwoSampleConfig


@dataclass
class EvaluateConfig:
    """The evaluate block's per-run settings (params.yaml ``evaluate``)."""
    cluster_cap: int = 50            # members of a cluster scored (seeded subsample), CDC's protocol
    max_samples: int | None = None   # Intra-LPIPS on the first this many samples (CDC: 1000); None: all
    seed: int = 0                    # cluster subsampling, the near-copy reference subset and KID's subsets
    near_copy_quantile: float = 0.05
    near_copy_reference: int = 500   # reference images that calibrate the near-copy threshold
    c2st: TwoSampleConfig = field(default_factory=TwoSampleConfig)   # the classifier two-sample test
    prdc_k: int = 5                  # k of precision/recall/density/coverage's nearest-neighbour balls (both papers: 5)
    swd: SlicedWassersteinConfig = field(default_factory=SlicedWassersteinConfig)   # patch SWD on pixels


def intra_lpips_record(embedding, samples: np.ndarray, train: np.ndarray, reference: np.ndarray | None, cfg: EvaluateConfig) -> dict:
    """Intra-LPIPS of ``samples`` around the K ``train`` images; with ``reference``, also the near-copy fraction."""
    from domainstudio.metrics.diversity import near_copy_fraction
    from domainstudio.metrics.intra_lpips import intra_lpips_from_embeddings

    e_train = embedding(train)
    e_samples = embedding(samples[: cfg.max_samples] if cfg.max_samples else samples)
    record = dataclasses.asdict(intra_lpips_from_embeddings(e_samples, e_train, cluster_cap=cfg.cluster_cap, seed=cfg.seed))
    if reference is not None:
        pick = np.random.default_rng(cfg.seed).permutation(len(reference))[: cfg.near_copy_reference]
        record.update(near_copy_fraction(e_samples, e_train, embedding(reference[np.sort(pick)]), cfg.near_copy_quantile))
    return record


def fid_record(features, samples: np.ndarray, reference_stats, seed: int = 0, feats: np.ndarray | None = None) -> dict:
    """FID and KID of ``samples`` against ``reference_stats`` (mu, sigma and the reference features); ``feats``: the
    samples' features when already extracted."""
    from domainstudio.metrics.fid import fid, kid

    feats = features(samples) if feats is None else feats
    return {"n_samples": len(feats), "n_reference": int(reference_stats["features"].shape[0]),
            "fid": fid(feats, reference_stats["mu"], reference_stats["sigma"]), "kid": kid(feats, reference_stats["features"], seed)}


def fidelity_record(samples: np.ndarray, reference: np.ndarray, sample_features: np.ndarray, reference_features: np.ndarray,
                    cfg: EvaluateConfig) -> dict:
    """The classifier two-sample test and the sliced Wasserstein distance of ``samples`` against ``reference`` images
    (raw pixels), and precision, recall,
    density and coverage of the samples' FID features against a seeded subset of the reference features of the same
    size (equal sets: identical distributions give precision = recall, and coverage does not drift with the ratio)."""
    from domainstudio.metrics.prdc_measures import precision_recall_density_coverage
    from domainstudio.metrics.sliced_wasserstein import sliced_wasserstein_distance
    from domainstudio.metrics.two_sample import classifier_two_sample_test

    n = min(len(sample_features), len(reference_features))
    rng = np.random.default_rng(cfg.seed)
    real = reference_features[np.sort(rng.permutation(len(reference_features))[:n])]
    fake = sample_features[np.sort(rng.permutation(len(sample_features))[:n])]
    return {**classifier_two_sample_test(samples, reference, cfg.c2st), "c2st_config": dataclasses.asdict(cfg.c2st),
            **sliced_wasserstein_distance(samples, reference, cfg.swd), "swd_config": dataclasses.asdict(cfg.swd),
            "prdc_k": cfg.prdc_k, "prdc_n_real": n, "prdc_n_fake": n,
            **precision_recall_density_coverage(real, fake, cfg.prdc_k)}


def evaluate_run(samples: np.ndarray, train: np.ndarray, reference: np.ndarray, reference_stats, cfg: EvaluateConfig,
                 embedding, features, diversity_backbone=None, domain: str | None = None) -> dict[str, dict]:
    """All metrics of one run: ``intra_lpips``, ``fid`` and ``fidelity`` records, and ``diversity`` when a
    ``diversity_backbone`` (the embedded backbone) and the ``domain`` are given."""
    from domainstudio.metrics.diversity import factor_diversity

    feats = features(samples)
    records = {"intra_lpips": intra_lpips_record(embedding, samples, train, reference, cfg),
               "fid": fid_record(features, samples, reference_stats, cfg.seed, feats),
               "fidelity": fidelity_record(samples, reference, feats, reference_stats["features"], cfg)}
    if diversity_backbone is not None:
        records["diversity"] = {"n_samples": len(samples), **factor_diversity(diversity_backbone, samples, reference, domain)}
    return records
