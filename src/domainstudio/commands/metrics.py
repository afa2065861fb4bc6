"""The metric verbs: the embedded metric backbone (train or import), reference statistics, and one run's metrics."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from domainstudio.commands.stage_config import dataclass_from, meta_pairs
from domainstudio.devices import set_threads


def cmd_train_backbone(a):
    import time

    from domainstudio.atomic import atomic_dir
    from domainstudio.data.world import world_module
    from domainstudio.metrics.embedded_backbone import BackboneTrainConfig, build_embedded_backbone, sanity_checks

    cfg = dataclass_from(BackboneTrainConfig, json.loads(a.config_json), "evaluate.backbone_train")
    set_threads(a.threads)
    started = time.perf_counter()
    backbone = build_embedded_backbone(a.world, a.data_root, a.resolution, cfg)
    backbone.meta["train_seconds"] = round(time.perf_counter() - started, 1)
    module = world_module(a.world)  # sanity checks on freshly rendered images the backbone has never seen
    fresh = {d: np.stack([np.asarray(module.render(d, "sanity", i, a.resolution, cfg.seed)[0]) for i in range(100)])
             for d in backbone.meta["report"]["domains"]}
    backbone.meta["sanity"] = sanity_checks(backbone, fresh, n=50)
    with atomic_dir(a.out) as tmp:
        backbone.save(tmp)


def cmd_import_backbone(a):
    """The released metric backbone, checked against its manifest, as the workflow's backbone folder."""
    import shutil

    from domainstudio.atomic import atomic_dir
    from domainstudio.metrics.embedded_backbone import EmbeddedBackbone
    from domainstudio.manifest import ReleaseError

    try:
        backbone = EmbeddedBackbone.load(a.release)
    except (ReleaseError, FileNotFoundError) as err:
        raise SystemExit(f"error: evaluate.embedded_backbone: {err}") from None
    if backbone.meta["resolution"] != a.resolution:
        raise SystemExit(f"error: evaluate.embedded_backbone {a.release} reads {backbone.meta['resolution']} px images but resolution is {a.resolution}")
    with atomic_dir(a.out) as tmp:
        for name in ("backbone.json", "backbone.safetensors"):
            shutil.copy2(Path(a.release) / name, tmp / name)


def cmd_reference_stats(a):
    from domainstudio.atomic import atomic_file
    from domainstudio.data.images import load_image_folder
    from domainstudio.metrics.backbones import fid_features
    from domainstudio.metrics.fid import statistics

    set_threads(a.threads)
    extract = fid_features(a.backbone, a.embedded_backbone)  # fails here, before any work
    feats = extract(load_image_folder(a.images, a.resolution))
    mu, sigma = statistics(feats)
    with atomic_file(a.out) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, mu=mu, sigma=sigma, features=feats, backbone=a.backbone, images=str(a.images))


def _seeded_config(cls, settings_json: str, seed: int, key: str):
    """A fidelity measure's params.yaml block (``key``, as JSON) as its settings class ``cls``, seeded by
    evaluate.seed (--seed), which the block may not override."""
    settings = json.loads(settings_json)
    if "seed" in settings:
        raise SystemExit(f"error: {key} takes its seed from evaluate.seed")
    return dataclass_from(cls, {**settings, "seed": seed}, key)


def _c2st_config(a):
    """evaluate.c2st (--c2st-json): the classifier two-sample test's settings."""
    from domainstudio.metrics.two_sample import TwoSampleConfig

    return _seeded_config(TwoSampleConfig, a.c2st_json, a.seed, "evaluate.c2st")


def _swd_config(a):
    """evaluate.swd (--swd-json): the sliced Wasserstein distance's settings."""
    from domainstudio.metrics.sliced_wasserstein import SlicedWassersteinConfig

    return _seeded_config(SlicedWassersteinConfig, a.swd_json, a.seed, "evaluate.swd")


def _evaluate_config(a):
    from domainstudio.metrics.evaluate import EvaluateConfig

    extra = {}
    if hasattr(a, "c2st_json"):  # the evaluate verb: the fidelity measures' settings
        extra = {"c2st": _c2st_config(a), "swd": _swd_config(a), "prdc_k": a.prdc_k}
    return EvaluateConfig(cluster_cap=a.cluster_cap, max_samples=a.max_samples, seed=a.seed,
                          near_copy_quantile=a.near_copy_quantile, near_copy_reference=a.near_copy_reference, **extra)


def cmd_intra_lpips(a):
    from domainstudio.atomic import write_json
    from domainstudio.data.images import load_image_folder
    from domainstudio.metrics.backbones import lpips_embedding
    from domainstudio.metrics.evaluate import intra_lpips_record

    set_threads(a.threads)
    embedding = lpips_embedding(a.backbone, a.resize, a.embedded_backbone)  # fails here, before any work
    train = load_image_folder(a.train, a.resolution, count=a.shots)
    samples = load_image_folder(Path(a.samples) / "images", a.resolution)
    reference = load_image_folder(a.reference, a.resolution) if a.reference else None
    write_json(a.out, {**meta_pairs(a.meta), "backbone": a.backbone, "lpips_resize": a.resize, "cluster_cap": a.cluster_cap,
                       **intra_lpips_record(embedding, samples, train, reference, _evaluate_config(a))})


def cmd_evaluate(a):
    """One run's metric files in one process (the workflow's evaluate rule): Intra-LPIPS with the near-copy
    fraction, FID/KID, the fidelity measures (two-sample test, SWD, precision/recall/density/coverage), and factor
    diversity when --diversity is given."""
    from domainstudio.atomic import write_json
    from domainstudio.data.images import load_image_folder
    from domainstudio.metrics.backbones import embedded_backbone, fid_features, lpips_embedding
    from domainstudio.metrics.evaluate import evaluate_run

    set_threads(a.threads)
    stats = np.load(a.reference_stats)
    if str(stats["backbone"]) != a.fid_backbone:
        raise SystemExit(f"error: {a.reference_stats} holds {stats['backbone']} features, not {a.fid_backbone}")
    embedding = lpips_embedding(a.backbone, a.resize, a.embedded_backbone)  # each fails here, before any work
    features = fid_features(a.fid_backbone, a.embedded_backbone)
    meta = meta_pairs(a.meta)
    diversity = embedded_backbone(a.embedded_backbone) if a.diversity else None
    records = evaluate_run(load_image_folder(Path(a.samples) / "images", a.resolution), load_image_folder(a.train, a.resolution, count=a.shots),
                           load_image_folder(a.reference, a.resolution), stats, _evaluate_config(a), embedding, features,
                           diversity, meta.get("domain"))
    write_json(a.intra_lpips_out, {**meta, "backbone": a.backbone, "lpips_resize": a.resize, "cluster_cap": a.cluster_cap,
                                   **records["intra_lpips"]})
    write_json(a.fid_out, {**meta, "fid_backbone": a.fid_backbone, **records["fid"], "reference": str(stats["images"])})
    write_json(a.fidelity_out, {**meta, "fid_backbone": a.fid_backbone, "n_samples": records["fid"]["n_samples"],
                                **records["fidelity"], "reference": str(stats["images"])})
    if a.diversity:
        write_json(a.diversity, {**meta, **records["diversity"]})


def cmd_calibrate(a):
    """Every fidelity measure of one domain's reference images under the controlled degradations
    (metrics/calibration.py), as a CSV."""
    from domainstudio.atomic import atomic_file
    from domainstudio.data.images import load_image_folder
    from domainstudio.metrics.backbones import embedded_backbone
    from domainstudio.metrics.calibration import CalibrationConfig, calibrate

    cfg = dataclass_from(CalibrationConfig, json.loads(a.config_json), "evaluate.calibration")  # fails here, before any work
    c2st, swd = _c2st_config(a), _swd_config(a)
    set_threads(a.threads)
    backbone = embedded_backbone(a.embedded_backbone, "calibration")
    table = calibrate(load_image_folder(a.reference, a.resolution), backbone, a.domain, cfg, c2st, swd, a.prdc_k, a.seed)
    table.insert(0, "world", a.world)
    table["backbone"] = a.backbone_name or str(a.embedded_backbone)
    with atomic_file(a.out) as tmp:
        table.to_csv(tmp, index=False)


def _run_arguments(s, backbone_default: str) -> None:
    s.add_argument("--samples", required=True); s.add_argument("--train", required=True); s.add_argument("--shots", type=int, required=True)
    s.add_argument("--resolution", type=int, required=True); s.add_argument("--backbone", default=backbone_default, help="the LPIPS backbone")
    s.add_argument("--embedded-backbone", help="folder of the embedded metric backbone (backbone 'embedded')")
    s.add_argument("--resize", type=int, help="resize images to this size before the LPIPS network (default: as stored)")
    s.add_argument("--cluster-cap", type=int, default=50); s.add_argument("--seed", type=int, default=0)
    s.add_argument("--max-samples", type=int, help="Intra-LPIPS on the first this many samples only (CDC: 1000)")
    s.add_argument("--near-copy-quantile", type=float, default=0.05); s.add_argument("--near-copy-reference", type=int, default=500)
    s.add_argument("--meta", nargs="*", default=[], help="key=value pairs stored with the result (world, domain, shots, method, family, seed)")
    s.add_argument("--threads", type=int)


def add_verbs(verb) -> None:
    s = verb("train-backbone", cmd_train_backbone, "Train the embedded metric backbone on source and reference images")
    s.add_argument("--world", default="faces"); s.add_argument("--data-root", required=True); s.add_argument("--resolution", type=int, required=True)
    s.add_argument("--config-json", default="{}", help="evaluate.backbone_train as JSON"); s.add_argument("--out", required=True)
    s.add_argument("--threads", type=int)

    s = verb("import-backbone", cmd_import_backbone, "Use a released embedded metric backbone (checked against its manifest)")
    s.add_argument("--release", required=True); s.add_argument("--out", required=True); s.add_argument("--resolution", type=int, required=True)

    s = verb("reference-stats", cmd_reference_stats, "FID/KID reference statistics of a target reference set (cached .npz)")
    s.add_argument("--images", required=True); s.add_argument("--resolution", type=int, required=True)
    s.add_argument("--backbone", required=True, help="embedded or inception"); s.add_argument("--embedded-backbone")
    s.add_argument("--out", required=True); s.add_argument("--threads", type=int)

    s = verb("intra-lpips", cmd_intra_lpips, "Intra-cluster LPIPS of samples around the K training images (CDC protocol)")
    _run_arguments(s, "alex-random")
    s.add_argument("--reference", help="target reference folder: also report the near-copy fraction")
    s.add_argument("--out", required=True)

    s = verb("evaluate", cmd_evaluate, "All metrics of one run: Intra-LPIPS, FID/KID, two-sample test, SWD and precision/"
             "recall/density/coverage, and (embedded worlds) factor diversity")
    _run_arguments(s, "embedded")
    s.add_argument("--reference", required=True); s.add_argument("--reference-stats", required=True)
    s.add_argument("--fid-backbone", default="embedded")
    s.add_argument("--c2st-json", default="{}", help="evaluate.c2st as JSON (the classifier two-sample test)")
    s.add_argument("--swd-json", default="{}", help="evaluate.swd as JSON (the sliced Wasserstein distance of pyramid patches)")
    s.add_argument("--prdc-k", type=int, default=5, help="k of precision/recall/density/coverage (evaluate.prdc_k)")
    s.add_argument("--intra-lpips-out", required=True); s.add_argument("--fid-out", required=True)
    s.add_argument("--fidelity-out", required=True, help="the two-sample test, SWD and precision/recall/density/coverage record")
    s.add_argument("--diversity", help="also write the factor-diversity record here (embedded worlds)")

    s = verb("calibrate", cmd_calibrate, "Every fidelity measure of a domain's reference images under controlled degradations")
    s.add_argument("--world", default="faces"); s.add_argument("--domain", required=True)
    s.add_argument("--reference", required=True); s.add_argument("--resolution", type=int, required=True)
    s.add_argument("--embedded-backbone", required=True, help="folder of the embedded metric backbone")
    s.add_argument("--backbone-name", help="what the table calls the backbone (its release folder; default: --embedded-backbone)")
    s.add_argument("--config-json", default="{}", help="evaluate.calibration as JSON")
    s.add_argument("--c2st-json", default="{}", help="evaluate.c2st as JSON"); s.add_argument("--prdc-k", type=int, default=5)
    s.add_argument("--swd-json", default="{}", help="evaluate.swd as JSON")
    s.add_argument("--seed", type=int, default=0); s.add_argument("--threads", type=int)
    s.add_argument("--out", required=True, help="CSV: one row per degradation, strength and split")
