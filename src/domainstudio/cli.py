"""The ``domainstudio`` command: one verb per workflow step. Snakemake rules and tests call these verbs.

Stage settings arrive as ``--config-json`` (a block of params.yaml, already validated by the workflow's
schema); unknown keys are an error here too, so the CLI can be used by hand without Snakemake.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import sys
from pathlib import Path

import numpy as np

log = logging.getLogger("domainstudio")


def _dataclass_from(cls, values: dict | None, where: str):
    values = dict(values or {})
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise SystemExit(f"error: unknown key(s) {unknown} in {where}; allowed: {sorted(names)}")
    return cls(**values)


def _config_blocks(config_json: str, allowed: set[str], where: str) -> dict:
    """A stage's --config-json, refusing keys the stage does not know."""
    cfg = json.loads(config_json)
    unknown = sorted(set(cfg) - allowed)
    if unknown:
        raise SystemExit(f"error: unknown key(s) {unknown} in {where}; allowed: {sorted(allowed)}")
    return cfg


def _train_and_save(unet, scheduler, images, objective, train_cfg, a, fingerprint: str, metadata: dict | None = None,
                    snapshots: dict | None = None, keep_checkpoint: bool = False) -> None:
    """Train, then write the diffusers folder (plus train_log.csv and metadata) atomically to ``a.out``;
    the resumable checkpoint is removed once the output is complete, unless ``keep_checkpoint`` (source pre-training:
    the state at the last step stays, so raising the steps continues it). A metadata record may be a function of the
    written train_log.csv. ``snapshots``: the trainer's snapshot_dir and snapshot_every."""
    from domainstudio.adapt.trainer import train
    from domainstudio.atomic import atomic_dir
    from domainstudio.models.source import save_source

    with atomic_dir(a.out) as tmp:
        final = train(unet, images, objective, train_cfg, a.checkpoint, fingerprint, log_csv=tmp / "train_log.csv",
                      keep_final_checkpoint=keep_checkpoint, **(snapshots or {}))
        save_source(final, scheduler, tmp)
        for name, record in (metadata or {}).items():
            record = record(tmp / "train_log.csv") if callable(record) else record
            (tmp / name).write_text(json.dumps(record, indent=2))
    if not keep_checkpoint:
        Path(a.checkpoint).unlink(missing_ok=True)


def _set_threads(threads: int | None) -> None:
    import torch

    if threads:
        torch.set_num_threads(threads)


def _resume_key(cfg: dict, block: str = "train") -> dict:
    """A stage config without what a resumed run may change: the number of steps (the trainer continues a shorter
    run, its learning rate being constant after warm-up), how often it checkpoints and logs, and the device."""
    train = {k: v for k, v in cfg.get(block, {}).items() if k not in ("steps", "checkpoint_every", "log_every", "device")}
    return {**cfg, block: train}


def _digest(*parts) -> str:
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, (bytes, bytearray)):
            h.update(part)
        elif hasattr(part, "tobytes"):
            h.update(part.tobytes())
        else:
            h.update(json.dumps(part, sort_keys=True, default=str).encode())
    return h.hexdigest()


def _model_digest(folder: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(folder.rglob("*")):
        if f.is_file():
            h.update(f.relative_to(folder).as_posix().encode())
            h.update(f.read_bytes())
    return h.hexdigest()


# -- data -------------------------------------------------------------------------------------------------

def cmd_render_source(a):
    from domainstudio.data.world import render_source

    render_source(a.world, a.out, a.count, a.resolution, a.seed)


def cmd_render_target(a):
    from domainstudio.data.world import render_target

    render_target(a.world, a.domain, a.out, a.shot_sets, a.reference, a.resolution, a.seed)


def cmd_world_figure(a):
    from domainstudio.data.world import domain_overview, world_module
    from domainstudio.report.figures import labelled_grid

    images = domain_overview(a.world, a.resolution, a.seed, per_domain=a.per_domain)
    labelled_grid(images, list(world_module(a.world).DOMAINS), a.per_domain, a.out)


# -- source model -------------------------------------------------------------------------------------------

def cmd_pretrain(a):
    import torch

    from domainstudio.adapt.objectives import NoisePrediction
    from domainstudio.adapt.trainer import TrainConfig
    from domainstudio.data.images import load_image_folder
    from domainstudio.models.source import SchedulerConfig, UNetConfig, build_scheduler, build_unet, count_parameters

    cfg = _config_blocks(a.config_json, {"unet", "scheduler", "train"}, "source config")
    unet_cfg = _dataclass_from(UNetConfig, cfg.get("unet"), "source.unet")
    sched_cfg = _dataclass_from(SchedulerConfig, cfg.get("scheduler"), "source.scheduler")
    train_cfg = _dataclass_from(TrainConfig, cfg.get("train"), "source.train")
    images = load_image_folder(a.images, a.resolution)  # validates every file before training
    _set_threads(a.threads)
    torch.manual_seed(train_cfg.seed)
    unet = build_unet(unet_cfg, a.resolution)
    scheduler = build_scheduler(sched_cfg)
    log.info("pre-training a %d-parameter UNet on %d images from %s", count_parameters(unet), len(images), a.images)
    snapshots = {"snapshot_dir": a.snapshot_dir, "snapshot_every": a.snapshot_every} if a.snapshot_dir else None
    _train_and_save(unet, scheduler, images, NoisePrediction(scheduler), train_cfg, a, _digest(_resume_key(cfg), a.resolution, images),
                    snapshots=snapshots, keep_checkpoint=True)


def cmd_source_quality(a):
    """FID of source-model samples against fresh source images, one row per model (a quality curve over snapshots)."""
    from domainstudio.metrics.source_quality import SourceQualityConfig, quality_curve, write_curve
    from domainstudio.models.source import SchedulerConfig

    cfg = _dataclass_from(SourceQualityConfig, json.loads(a.config_json), "source quality config")
    scheduler_cfg = _dataclass_from(SchedulerConfig, json.loads(a.scheduler_json), "source.scheduler")
    missing = [m for m in a.models if not Path(m).is_dir()]
    if missing:
        raise SystemExit(f"error: no such model folder(s): {missing}")
    _set_threads(a.threads)
    rows, _ = quality_curve([Path(m) for m in a.models], a.backbone, a.world, a.resolution, a.data_seed, cfg, scheduler_cfg, a.grids)
    write_curve(rows, a.out)


def cmd_release_source(a):
    from domainstudio.metrics.source_quality import SourceQualityConfig
    from domainstudio.models.source import SchedulerConfig
    from domainstudio.release import release_source

    cfg = _dataclass_from(SourceQualityConfig, json.loads(a.quality_json), "source.quality")
    params = json.loads(a.params_json)
    scheduler_cfg = _dataclass_from(SchedulerConfig, params.get("source", {}).get("scheduler"), "source.scheduler")
    _set_threads(a.threads)
    snapshots = Path(a.snapshots) if a.snapshots else None
    manifest = release_source(Path(a.model), Path(a.out), Path(a.backbone), snapshots, a.world, a.resolution, a.data_seed,
                              cfg, scheduler_cfg, a.command, params)
    log.info("released %s: %d steps, FID %.3f (floor %.3f)", a.out, manifest["steps"], manifest["quality"]["fid"], manifest["quality"]["floor"])


def cmd_release_gan(a):
    from domainstudio.metrics.source_quality import SourceQualityConfig
    from domainstudio.release import release_gan

    cfg = _dataclass_from(SourceQualityConfig, json.loads(a.quality_json), "gan.quality")
    _set_threads(a.threads)
    snapshots = Path(a.snapshots) if a.snapshots else None
    manifest = release_gan(Path(a.model), Path(a.out), Path(a.backbone), snapshots, a.world, a.resolution, a.data_seed,
                           cfg, a.command, json.loads(a.params_json))
    log.info("released %s: %d steps, FID %.3f (floor %.3f)", a.out, manifest["steps"], manifest["quality"]["fid"], manifest["quality"]["floor"])


def cmd_verify_release(a):
    from domainstudio.release import ReleaseError, verify_release

    for folder in a.folders:
        try:
            manifest = verify_release(folder)
        except ReleaseError as err:
            raise SystemExit(f"error: {err}") from None
        print(f"{folder}: {len(manifest['files'])} files match {folder}/manifest.json")


def cmd_release_backbone(a):
    from domainstudio.release import release_backbone

    release_backbone(Path(a.backbone), Path(a.out), a.command, json.loads(a.params_json))


def cmd_import_source(a):
    from domainstudio.atomic import atomic_dir
    from domainstudio.models.source import image_size, load_source, save_source

    unet, scheduler = load_source(a.pretrained)
    if a.resolution and image_size(unet) != (a.resolution, a.resolution):
        raise SystemExit(f"error: source model {a.pretrained} generates {unet.config.sample_size} px images but resolution is {a.resolution}")
    with atomic_dir(a.out) as tmp:
        save_source(unet, scheduler, tmp)


# -- adaptation and sampling --------------------------------------------------------------------------------

def cmd_adapt(a):
    from domainstudio.adapt.methods import build_objective, method_weights
    from domainstudio.adapt.objectives import pairwise_summary
    from domainstudio.adapt.trainer import TrainConfig
    from domainstudio.data.images import load_image_folder
    from domainstudio.devices import resolve_device, resolve_precision
    from domainstudio.models.source import load_source

    cfg = _config_blocks(a.config_json, {"train", "weights", "options"}, "adapt config")
    train_cfg = _dataclass_from(TrainConfig, cfg.get("train"), "adapt.train")
    try:
        weights = method_weights(a.method, cfg.get("weights"))
        images = load_image_folder(a.images, a.resolution, count=a.shots)  # validates before training
        unet, scheduler = load_source(a.source)
        objective = build_objective(weights, unet, scheduler, train_cfg.batch_size, cfg.get("options"))
    except (TypeError, ValueError) as err:
        raise SystemExit(f"error: {err}") from None
    _set_threads(a.threads)
    fingerprint = _digest(_resume_key(cfg), a.method, a.shots, images, _model_digest(Path(a.source)))
    record = {"method": a.method, "shots": a.shots, "weights": dataclasses.asdict(weights), "options": cfg.get("options", {}),
              "train": dataclasses.asdict(train_cfg), "precision": resolve_precision(resolve_device(train_cfg.device), train_cfg.precision),
              "source": str(a.source), "images": str(a.images)}
    _train_and_save(unet, scheduler, images, objective, train_cfg, a, fingerprint,
                    {"adaptation.json": lambda log_csv: {**record, **pairwise_summary(log_csv)}})


def cmd_sample(a):
    from domainstudio.atomic import atomic_dir
    from domainstudio.data.images import image_grid, save_images
    from domainstudio.models.source import load_source
    from domainstudio.devices import resolve_device, resolve_precision
    from domainstudio.sampling import SampleConfig, ddim_sample

    cfg = _dataclass_from(SampleConfig, json.loads(a.config_json), "sample")
    if a.n_samples:
        cfg = dataclasses.replace(cfg, n_samples=a.n_samples)
    if a.seed is not None:
        cfg = dataclasses.replace(cfg, seed=a.seed)
    if cfg.source_above_t is not None and not a.source_model:
        raise SystemExit("error: sample.source_above_t is set but no --source-model was given")
    _set_threads(a.threads)
    unet, scheduler = load_source(a.model)
    source = load_source(a.source_model)[0] if cfg.source_above_t is not None else None
    images = ddim_sample(unet, scheduler, cfg, source)
    with atomic_dir(a.out) as tmp:
        save_images(images, tmp / "images")
        image_grid(images[:64], columns=8, scale=2).save(tmp / "grid.png")
        (tmp / "sampling.json").write_text(json.dumps({**dataclasses.asdict(cfg), "model": str(a.model), "source_model": a.source_model,
                                                       "precision_used": resolve_precision(resolve_device(cfg.device), cfg.precision)}, indent=2))


# -- evaluation and report ------------------------------------------------------------------------------------

def _lpips_embedding(backbone: str, resize: int | None, embedded_dir: str | None):
    """The LPIPS embedding of ``evaluate.backbone``; raises before any work if its weights are missing."""
    if backbone == "embedded":
        from domainstudio.metrics.embedded_backbone import EmbeddedBackbone

        if not embedded_dir:
            raise SystemExit("error: LPIPS backbone 'embedded' needs --embedded-backbone (the train_backbone rule's folder)")
        return EmbeddedBackbone.load(embedded_dir, resize)
    from domainstudio.metrics.lpips_embedding import LpipsEmbedding

    return LpipsEmbedding(backbone, resize=resize)


def _write_record(out: str, record: dict) -> None:
    from domainstudio.atomic import atomic_file

    with atomic_file(out) as tmp:
        tmp.write_text(json.dumps(record, indent=2))


def cmd_train_backbone(a):
    from domainstudio.atomic import atomic_dir
    from domainstudio.data.world import world_module
    from domainstudio.metrics.embedded_backbone import BackboneTrainConfig, build_embedded_backbone, sanity_checks

    import time

    cfg = _dataclass_from(BackboneTrainConfig, json.loads(a.config_json), "evaluate.backbone_train")
    _set_threads(a.threads)
    started = time.perf_counter()
    backbone = build_embedded_backbone(a.world, a.data_root, a.resolution, cfg)
    backbone.meta["train_seconds"] = round(time.perf_counter() - started, 1)
    module = world_module(a.world)  # sanity checks on freshly rendered images the backbone has never seen
    fresh = {d: np.stack([np.asarray(module.render(d, "sanity", i, a.resolution, cfg.seed)[0]) for i in range(100)])
             for d in module.DOMAINS}
    backbone.meta["sanity"] = sanity_checks(backbone, fresh, n=50)
    with atomic_dir(a.out) as tmp:
        backbone.save(tmp)


def cmd_import_backbone(a):
    """The released metric backbone, checked against its manifest, as the workflow's backbone folder."""
    import shutil

    from domainstudio.atomic import atomic_dir
    from domainstudio.metrics.embedded_backbone import EmbeddedBackbone
    from domainstudio.release import ReleaseError

    try:
        backbone = EmbeddedBackbone.load(a.release)
    except (ReleaseError, FileNotFoundError) as err:
        raise SystemExit(f"error: evaluate.embedded_backbone: {err}") from None
    if backbone.meta["resolution"] != a.resolution:
        raise SystemExit(f"error: evaluate.embedded_backbone {a.release} reads {backbone.meta['resolution']} px images but resolution is {a.resolution}")
    with atomic_dir(a.out) as tmp:
        for name in ("backbone.json", "backbone.safetensors"):
            shutil.copy2(Path(a.release) / name, tmp / name)


def cmd_intra_lpips(a):
    from domainstudio.data.images import load_image_folder
    from domainstudio.metrics.diversity import near_copy_fraction
    from domainstudio.metrics.intra_lpips import intra_lpips_from_embeddings

    _set_threads(a.threads)
    embedding = _lpips_embedding(a.backbone, a.resize, a.embedded_backbone)  # fails here, before any work
    train = embedding(load_image_folder(a.train, a.resolution, count=a.shots))
    samples = load_image_folder(Path(a.samples) / "images", a.resolution)
    samples = embedding(samples[: a.max_samples] if a.max_samples else samples)
    result = intra_lpips_from_embeddings(samples, train, cluster_cap=a.cluster_cap, seed=a.seed)
    record = {**dict(kv.split("=", 1) for kv in a.meta), "backbone": a.backbone, "lpips_resize": a.resize,
              "cluster_cap": a.cluster_cap, **dataclasses.asdict(result)}
    if a.reference:
        reference = load_image_folder(a.reference, a.resolution)
        pick = np.random.default_rng(a.seed).permutation(len(reference))[: a.near_copy_reference]
        record.update(near_copy_fraction(samples, train, embedding(reference[np.sort(pick)]), a.near_copy_quantile))
    _write_record(a.out, record)


def cmd_reference_stats(a):
    from domainstudio.atomic import atomic_file
    from domainstudio.data.images import load_image_folder
    from domainstudio.metrics.fid import feature_extractor, statistics

    _set_threads(a.threads)
    extract = feature_extractor(a.backbone, a.embedded_backbone)  # fails here, before any work
    feats = extract(load_image_folder(a.images, a.resolution))
    mu, sigma = statistics(feats)
    with atomic_file(a.out) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, mu=mu, sigma=sigma, features=feats, backbone=a.backbone, images=str(a.images))


def cmd_fid(a):
    from domainstudio.data.images import load_image_folder
    from domainstudio.metrics.fid import feature_extractor, fid, kid

    _set_threads(a.threads)
    ref = np.load(a.reference_stats)
    if str(ref["backbone"]) != a.backbone:
        raise SystemExit(f"error: {a.reference_stats} holds {ref['backbone']} features, not {a.backbone}")
    extract = feature_extractor(a.backbone, a.embedded_backbone)
    feats = extract(load_image_folder(Path(a.samples) / "images", a.resolution))
    record = {**dict(kv.split("=", 1) for kv in a.meta), "fid_backbone": a.backbone, "n_samples": len(feats),
              "n_reference": int(ref["features"].shape[0]), "fid": fid(feats, ref["mu"], ref["sigma"]),
              "kid": kid(feats, ref["features"], a.seed), "reference": str(ref["images"])}
    _write_record(a.out, record)


def cmd_diversity(a):
    from domainstudio.data.images import load_image_folder
    from domainstudio.metrics.diversity import factor_diversity
    from domainstudio.metrics.embedded_backbone import EmbeddedBackbone

    _set_threads(a.threads)
    backbone = EmbeddedBackbone.load(a.embedded_backbone)
    samples = load_image_folder(Path(a.samples) / "images", a.resolution)
    reference = load_image_folder(a.reference, a.resolution)
    record = {**dict(kv.split("=", 1) for kv in a.meta), "n_samples": len(samples),
              **factor_diversity(backbone, samples, reference, a.domain)}
    _write_record(a.out, record)


def cmd_evaluate(a):
    """One run's three metric files in one process (the workflow's evaluate rule): Intra-LPIPS with the near-copy
    fraction, FID/KID, and factor diversity when --diversity is given."""
    common = dict(samples=a.samples, resolution=a.resolution, threads=a.threads, meta=a.meta, embedded_backbone=a.embedded_backbone)
    cmd_intra_lpips(argparse.Namespace(**common, train=a.train, shots=a.shots, backbone=a.backbone, resize=a.resize,
                                       max_samples=a.max_samples, cluster_cap=a.cluster_cap, seed=a.seed, reference=a.reference,
                                       near_copy_quantile=a.near_copy_quantile, near_copy_reference=a.near_copy_reference,
                                       out=a.intra_lpips_out))
    cmd_fid(argparse.Namespace(**common, reference_stats=a.reference_stats, backbone=a.fid_backbone, seed=a.seed, out=a.fid_out))
    if a.diversity:
        domain = dict(kv.split("=", 1) for kv in a.meta).get("domain")
        cmd_diversity(argparse.Namespace(**common, reference=a.reference, domain=domain, out=a.diversity))


def cmd_table(a):
    from domainstudio.report.tables import build_table, run_records

    build_table(run_records(a.runs), a.table, a.out, a.reported)


def cmd_figures(a):
    import pandas as pd

    from domainstudio.data.images import load_image_folder
    from domainstudio.metrics.lpips_embedding import squared_distances
    from domainstudio.report.figures import metric_bars, nearest_neighbours, sample_matrix

    out = Path(a.out_dir)
    run = lambda d, m: Path(a.samples_root) / d / f"{a.shots}shot" / m / f"seed{a.seed}" / "images"
    cells = {(m, d): load_image_folder(run(d, m), a.resolution, count=16) for d in a.domains for m in a.methods}
    training = {d: load_image_folder(Path(a.data_root) / d / f"{a.shots}shot", a.resolution, count=a.shots) for d in a.domains}
    sample_matrix(cells, a.methods, a.domains, out / f"{a.world}_samples.png", training)
    embedding = _lpips_embedding(a.backbone, a.resize, a.embedded_backbone)
    for d in a.domains:
        samples = {m: load_image_folder(run(d, m), a.resolution, count=a.per_row) for m in a.methods}
        e_train = embedding(training[d])
        nearest = {m: squared_distances(embedding(x), e_train).argmin(1).numpy() for m, x in samples.items()}
        nearest_neighbours(training[d], samples, nearest, out / f"{a.world}_{d}_nearest.png",
                           title=f"{d}, {a.shots}-shot: samples and their nearest training image ({a.backbone} LPIPS)")
    metric_bars(pd.read_csv(a.table1), "intra_lpips", "std", out / f"{a.world}_intra_lpips.png", "Intra-LPIPS (+- std over clusters)")
    metric_bars(pd.read_csv(a.table2), "fid", "fid_std_seeds", out / f"{a.world}_fid.png", "FID (lower is better)")


def cmd_report(a):
    from domainstudio.report.document import write_metrics_json, write_report
    from domainstudio.report.tables import run_records, summary_metrics

    write_report(json.loads(a.config_json), a.results, a.benchmarks, a.out)
    write_metrics_json(summary_metrics(run_records(a.runs)), a.metrics_json)


# -- GAN baselines (TGAN, FreezeD, EWC, CDC; src/domainstudio/gan/) ---------------------------------------------

def cmd_pretrain_gan(a):
    import torch

    from domainstudio.atomic import atomic_dir
    from domainstudio.data.images import image_grid, load_image_folder
    from domainstudio.gan.artifact import build_gan, sample_gan, save_gan
    from domainstudio.gan.methods import Adaptation
    from domainstudio.gan.networks import GanNetworkConfig, count_parameters, resolutions
    from domainstudio.gan.train import GanTrainConfig, train_gan

    cfg = _config_blocks(a.config_json, {"network", "pretrain"}, "gan config")
    net_cfg = _dataclass_from(GanNetworkConfig, cfg.get("network"), "gan.network")
    train_cfg = _dataclass_from(GanTrainConfig, cfg.get("pretrain"), "gan.pretrain")
    try:
        resolutions(a.resolution)
        generator, discriminator = build_gan(net_cfg, a.resolution, train_cfg.seed)
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None
    images = load_image_folder(a.images, a.resolution)  # validates every file before training
    _set_threads(a.threads)
    log.info("pre-training a GAN (G %d, D %d parameters) on %d images from %s", count_parameters(generator),
             count_parameters(discriminator), len(images), a.images)
    rng = torch.Generator().manual_seed(train_cfg.seed)
    resume = {"checkpoint": a.checkpoint, "snapshot_dir": a.snapshot_dir, "snapshot_every": a.snapshot_every,
              "fingerprint": _digest(_resume_key(cfg, "pretrain"), a.resolution, images), "keep_final_checkpoint": True}
    with atomic_dir(a.out) as tmp:
        final, _ = train_gan(generator, discriminator, images, train_cfg, Adaptation(generator, discriminator), rng,
                             log_csv=tmp / "train_log.csv", **resume)
        save_gan(tmp, final, discriminator)
        image_grid(sample_gan(final, 64, seed=0), columns=8, scale=2).save(tmp / "preview.png")
        (tmp / "gan.json").write_text(json.dumps({"network": dataclasses.asdict(net_cfg), "pretrain": dataclasses.asdict(train_cfg),
                                                  "images": str(a.images), "resolution": a.resolution}, indent=2))


def cmd_import_gan(a):
    import shutil

    from domainstudio.atomic import atomic_dir
    from domainstudio.gan.artifact import FILE, GanArtifactError, load_gan

    from domainstudio.release import ReleaseError, is_release, verify_release

    try:
        if is_release(a.pretrained):
            verify_release(a.pretrained)
        generator, _ = load_gan(a.pretrained)
    except (GanArtifactError, ReleaseError, RuntimeError, KeyError) as err:
        raise SystemExit(f"error: gan.pretrained: {err}") from None
    if generator.resolution != a.resolution:
        raise SystemExit(f"error: gan.pretrained {a.pretrained} generates {generator.resolution} px images but resolution is {a.resolution}")
    with atomic_dir(a.out) as tmp:
        shutil.copy2(Path(a.pretrained) / FILE, tmp / FILE)


def cmd_adapt_gan(a):
    import torch

    from domainstudio.atomic import atomic_dir
    from domainstudio.data.images import load_image_folder
    from domainstudio.gan.artifact import GanArtifactError, load_gan, save_gan
    from domainstudio.gan.methods import GanMethodsConfig, build_adaptation
    from domainstudio.gan.train import GanTrainConfig, train_gan

    cfg = _config_blocks(a.config_json, {"adapt", "methods"}, "gan adapt config")
    train_cfg = _dataclass_from(GanTrainConfig, cfg.get("adapt"), "gan.adapt")
    _set_threads(a.threads)
    try:
        methods_cfg = GanMethodsConfig.from_dict(cfg.get("methods"))
        generator, discriminator = load_gan(a.source)
        images = load_image_folder(a.images, generator.resolution, count=a.shots)  # validates before training
        torch.manual_seed(train_cfg.seed)
        rng = torch.Generator().manual_seed(train_cfg.seed)
        rule = build_adaptation(a.method, generator, discriminator, methods_cfg, a.shots, rng)
    except (GanArtifactError, ValueError) as err:
        raise SystemExit(f"error: {err}") from None
    record = {"method": a.method, "family": "gan", "shots": a.shots, "adapt": dataclasses.asdict(train_cfg),
              "method_config": dataclasses.asdict(getattr(methods_cfg, a.method)) if hasattr(methods_cfg, a.method) else {},
              "source": str(a.source), "images": str(a.images)}
    with atomic_dir(a.out) as tmp:
        final, _ = train_gan(generator, discriminator, images, train_cfg, rule, rng, log_csv=tmp / "train_log.csv")
        save_gan(tmp, final, discriminator)
        (tmp / "adaptation.json").write_text(json.dumps(record, indent=2))


def cmd_sample_gan(a):
    from domainstudio.atomic import atomic_dir
    from domainstudio.data.images import image_grid, save_images
    from domainstudio.gan.artifact import GanArtifactError, load_gan, sample_gan

    _set_threads(a.threads)
    try:
        generator, _ = load_gan(a.model)
    except GanArtifactError as err:
        raise SystemExit(f"error: {err}") from None
    images = sample_gan(generator, a.n_samples, a.seed, a.batch_size)
    with atomic_dir(a.out) as tmp:
        save_images(images, tmp / "images")
        image_grid(images[:64], columns=8, scale=2).save(tmp / "grid.png")
        (tmp / "sampling.json").write_text(json.dumps({"n_samples": a.n_samples, "seed": a.seed, "batch_size": a.batch_size,
                                                       "model": str(a.model), "family": "gan"}, indent=2))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="domainstudio", description=__doc__.splitlines()[0])
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="verb", required=True)

    def verb(name, func, help):
        s = sub.add_parser(name, help=help, description=help)
        s.set_defaults(func=func)
        return s

    s = verb("render-source", cmd_render_source, "Render the embedded world's source training set")
    s.add_argument("--world", default="faces"); s.add_argument("--out", required=True)
    s.add_argument("--count", type=int, required=True); s.add_argument("--resolution", type=int, default=32); s.add_argument("--seed", type=int, default=0)

    s = verb("render-target", cmd_render_target, "Render a target domain: nested K-shot sets and a reference set")
    s.add_argument("--world", default="faces"); s.add_argument("--domain", required=True); s.add_argument("--out", required=True)
    s.add_argument("--shot-sets", type=int, nargs="+", default=[1, 5, 10]); s.add_argument("--reference", type=int, required=True)
    s.add_argument("--resolution", type=int, default=32); s.add_argument("--seed", type=int, default=0)

    s = verb("world-figure", cmd_world_figure, "A grid of example images of every domain of an embedded world")
    s.add_argument("--world", default="faces"); s.add_argument("--out", required=True)
    s.add_argument("--resolution", type=int, default=32); s.add_argument("--seed", type=int, default=0); s.add_argument("--per-domain", type=int, default=10)

    s = verb("pretrain", cmd_pretrain, "Pre-train the source DDPM on the source images; writes a diffusers folder")
    s.add_argument("--images", required=True); s.add_argument("--out", required=True); s.add_argument("--resolution", type=int, required=True)
    s.add_argument("--config-json", required=True, help="the source block of params.yaml as JSON")
    s.add_argument("--checkpoint", required=True, help="file for the training state, every train.checkpoint_every steps and at the end (raising the steps continues it)")
    s.add_argument("--snapshot-dir", help="save the (EMA) weights here every --snapshot-every steps (step<N>/ folders)")
    s.add_argument("--snapshot-every", type=int, default=0)
    s.add_argument("--threads", type=int)

    s = verb("source-quality", cmd_source_quality, "FID of source models' samples against fresh source images (quality curve)")
    s.add_argument("--models", nargs="+", required=True, help="source model folders or trainer snapshots (step<N>/)")
    s.add_argument("--backbone", required=True, help="the embedded metric backbone folder")
    s.add_argument("--world", default="faces"); s.add_argument("--resolution", type=int, required=True)
    s.add_argument("--data-seed", type=int, default=0, help="data.seed: the seed of the rendered world")
    s.add_argument("--config-json", default="{}", help="samples, ddim_steps, batch_size, seed as JSON")
    s.add_argument("--scheduler-json", default="{}", help="source.scheduler as JSON (for snapshots, which hold a UNet only)")
    s.add_argument("--out", required=True, help="CSV: model, step, fid, floor"); s.add_argument("--grids", help="folder for a 64-sample grid per model")
    s.add_argument("--threads", type=int)

    for name, func, what, block in (("release-source", cmd_release_source, "a trained source DDPM: diffusers folder", "source"),
                                    ("release-gan", cmd_release_gan, "the source GAN of the baselines: gan.pt", "gan")):
        s = verb(name, func, f"Release {what}, quality curve, grid, manifest")
        s.add_argument("--model", required=True); s.add_argument("--out", required=True); s.add_argument("--backbone", required=True)
        s.add_argument("--snapshots", help="the trainer's snapshot folder (step<N>/), for the quality curve")
        s.add_argument("--world", default="faces"); s.add_argument("--resolution", type=int, required=True); s.add_argument("--data-seed", type=int, default=0)
        s.add_argument("--quality-json", default="{}", help=f"{block}.quality as JSON"); s.add_argument("--params-json", required=True,
                       help="the parameters that regenerate the release (recorded in the manifest)")
        s.add_argument("--command", required=True, help="the command that regenerates the release (recorded in the manifest)")
        s.add_argument("--threads", type=int)


    s = verb("release-backbone", cmd_release_backbone, "Release the embedded metric backbone with its sanity numbers and a manifest")
    s.add_argument("--backbone", required=True); s.add_argument("--out", required=True)
    s.add_argument("--params-json", required=True); s.add_argument("--command", required=True)

    s = verb("verify-release", cmd_verify_release, "Check a release folder's files against its manifest (sha256)")
    s.add_argument("folders", nargs="+")

    s = verb("import-source", cmd_import_source, "Load a released DDPM (hub id or local folder) and save it as the source model")
    s.add_argument("--pretrained", required=True); s.add_argument("--out", required=True); s.add_argument("--resolution", type=int)

    s = verb("adapt", cmd_adapt, "Adapt the source model to K target images with one method")
    s.add_argument("--source", required=True); s.add_argument("--images", required=True); s.add_argument("--shots", type=int, required=True)
    s.add_argument("--method", required=True); s.add_argument("--resolution", type=int, required=True)
    s.add_argument("--config-json", required=True, help='{"train": {...}, "weights": {...}, "options": {...}} from params.yaml')
    s.add_argument("--checkpoint", required=True); s.add_argument("--out", required=True); s.add_argument("--threads", type=int)

    s = verb("sample", cmd_sample, "DDIM samples of a model, as PNGs plus grid.png")
    s.add_argument("--model", required=True); s.add_argument("--out", required=True)
    s.add_argument("--source-model", help="the source model, for sample.source_above_t")
    s.add_argument("--config-json", default="{}", help="the sample block of params.yaml as JSON")
    s.add_argument("--n-samples", type=int, help="override n_samples"); s.add_argument("--seed", type=int, help="override the seed")
    s.add_argument("--threads", type=int)

    s = verb("train-backbone", cmd_train_backbone, "Train the embedded metric backbone on source and reference images")
    s.add_argument("--world", default="faces"); s.add_argument("--data-root", required=True); s.add_argument("--resolution", type=int, required=True)
    s.add_argument("--config-json", default="{}", help="evaluate.backbone_train as JSON"); s.add_argument("--out", required=True)
    s.add_argument("--threads", type=int)

    s = verb("import-backbone", cmd_import_backbone, "Use a released embedded metric backbone (checked against its manifest)")
    s.add_argument("--release", required=True); s.add_argument("--out", required=True); s.add_argument("--resolution", type=int, required=True)

    s = verb("intra-lpips", cmd_intra_lpips, "Intra-cluster LPIPS of samples around the K training images (CDC protocol)")
    s.add_argument("--samples", required=True); s.add_argument("--train", required=True); s.add_argument("--shots", type=int, required=True)
    s.add_argument("--resolution", type=int, required=True); s.add_argument("--backbone", default="alex-random")
    s.add_argument("--embedded-backbone", help="folder of the trained embedded backbone (backbone 'embedded')")
    s.add_argument("--resize", type=int, help="resize images to this size before the LPIPS network (default: as stored)")
    s.add_argument("--cluster-cap", type=int, default=50); s.add_argument("--seed", type=int, default=0)
    s.add_argument("--max-samples", type=int, help="use only the first this many samples (CDC: 1000)")
    s.add_argument("--reference", help="target reference folder: also report the near-copy fraction")
    s.add_argument("--near-copy-quantile", type=float, default=0.05); s.add_argument("--near-copy-reference", type=int, default=500)
    s.add_argument("--meta", nargs="*", default=[], help="key=value pairs stored with the result (method, domain, ...)")
    s.add_argument("--out", required=True); s.add_argument("--threads", type=int)

    s = verb("reference-stats", cmd_reference_stats, "FID/KID reference statistics of a target reference set (cached .npz)")
    s.add_argument("--images", required=True); s.add_argument("--resolution", type=int, required=True)
    s.add_argument("--backbone", required=True, help="embedded or inception"); s.add_argument("--embedded-backbone")
    s.add_argument("--out", required=True); s.add_argument("--threads", type=int)

    s = verb("fid", cmd_fid, "FID and KID of samples against cached reference statistics (clean-fid's formulas)")
    s.add_argument("--samples", required=True); s.add_argument("--reference-stats", required=True)
    s.add_argument("--resolution", type=int, required=True); s.add_argument("--backbone", required=True)
    s.add_argument("--embedded-backbone"); s.add_argument("--seed", type=int, default=0)
    s.add_argument("--meta", nargs="*", default=[]); s.add_argument("--out", required=True); s.add_argument("--threads", type=int)

    s = verb("diversity", cmd_diversity, "Ground-truth factor diversity and in-domain fraction of samples (embedded worlds)")
    s.add_argument("--samples", required=True); s.add_argument("--reference", required=True); s.add_argument("--domain", required=True)
    s.add_argument("--resolution", type=int, required=True); s.add_argument("--embedded-backbone", required=True)
    s.add_argument("--meta", nargs="*", default=[]); s.add_argument("--out", required=True); s.add_argument("--threads", type=int)

    s = verb("evaluate", cmd_evaluate, "All metrics of one run: intra-lpips, fid and (embedded worlds) diversity in one process")
    s.add_argument("--samples", required=True); s.add_argument("--train", required=True); s.add_argument("--shots", type=int, required=True)
    s.add_argument("--reference", required=True); s.add_argument("--reference-stats", required=True)
    s.add_argument("--resolution", type=int, required=True); s.add_argument("--backbone", default="embedded")
    s.add_argument("--fid-backbone", default="embedded"); s.add_argument("--embedded-backbone"); s.add_argument("--resize", type=int)
    s.add_argument("--max-samples", type=int); s.add_argument("--cluster-cap", type=int, default=50); s.add_argument("--seed", type=int, default=0)
    s.add_argument("--near-copy-quantile", type=float, default=0.05); s.add_argument("--near-copy-reference", type=int, default=500)
    s.add_argument("--intra-lpips-out", required=True); s.add_argument("--fid-out", required=True)
    s.add_argument("--diversity", help="also write the factor-diversity record here (embedded worlds)")
    s.add_argument("--meta", nargs="*", default=[], help="key=value pairs (world, domain, shots, method, family, seed)")
    s.add_argument("--threads", type=int)

    s = verb("table", cmd_table, "One of the paper's tables (CSV + Markdown twin) from per-run metric folders")
    s.add_argument("--table", required=True, choices=["table1", "table2", "table3_ablation", "table4_shots"])
    s.add_argument("--reported", choices=["intra_lpips", "fid"], help="append the literature's rows of this metric")
    s.add_argument("--out", required=True); s.add_argument("runs", nargs="+", help="results/metrics/<world>/<domain>/<K>shot/<method>/seed<s> folders")

    s = verb("figures", cmd_figures, "Sample grid (methods x domains), nearest-training-image figures and metric bar charts")
    s.add_argument("--world", required=True); s.add_argument("--samples-root", required=True); s.add_argument("--data-root", required=True)
    s.add_argument("--domains", nargs="+", required=True); s.add_argument("--methods", nargs="+", required=True)
    s.add_argument("--shots", type=int, required=True); s.add_argument("--seed", type=int, default=0); s.add_argument("--resolution", type=int, required=True)
    s.add_argument("--backbone", default="embedded"); s.add_argument("--embedded-backbone"); s.add_argument("--resize", type=int)
    s.add_argument("--per-row", type=int, default=10); s.add_argument("--table1", required=True); s.add_argument("--table2", required=True)
    s.add_argument("--out-dir", required=True)

    s = verb("report", cmd_report, "results/report.md and the DVC metrics summary")
    s.add_argument("--config-json", required=True, help="the workflow's configuration as JSON"); s.add_argument("--results", default="results")
    s.add_argument("--benchmarks", default="logs/benchmarks"); s.add_argument("--out", required=True); s.add_argument("--metrics-json", required=True)
    s.add_argument("runs", nargs="+")

    # text-to-image DomainStudio: build-tiny-sd, t2i-class-images, t2i-adapt, t2i-sample
    from domainstudio.t2i.commands import add_t2i_verbs

    add_t2i_verbs(verb)

    s = verb("pretrain-gan", cmd_pretrain_gan, "Pre-train the source GAN of the GAN baselines on the source images")
    s.add_argument("--images", required=True); s.add_argument("--out", required=True); s.add_argument("--resolution", type=int, required=True)
    s.add_argument("--config-json", required=True, help='{"network": {...}, "pretrain": {...}} from params.yaml gan:')
    s.add_argument("--checkpoint", help="file for the training state, every gan.pretrain.checkpoint_every steps and at the end (raising the steps continues it)")
    s.add_argument("--snapshot-dir", help="save the kept generator here every --snapshot-every steps (step<N>/ GAN folders)")
    s.add_argument("--snapshot-every", type=int, default=0)
    s.add_argument("--threads", type=int)

    s = verb("import-gan", cmd_import_gan, "Use a local GAN folder (gan.pt, as pretrain-gan writes) as the source GAN")
    s.add_argument("--pretrained", required=True); s.add_argument("--out", required=True); s.add_argument("--resolution", type=int, required=True)

    s = verb("adapt-gan", cmd_adapt_gan, "Adapt the source GAN to K target images with tgan, freezed, ewc or cdc")
    s.add_argument("--source", required=True); s.add_argument("--images", required=True); s.add_argument("--shots", type=int, required=True)
    s.add_argument("--method", required=True); s.add_argument("--config-json", required=True, help='{"adapt": {...}, "methods": {...}} from params.yaml gan:')
    s.add_argument("--out", required=True); s.add_argument("--threads", type=int)

    s = verb("sample-gan", cmd_sample_gan, "Samples of a GAN, as PNGs plus grid.png (the diffusion sample folder layout)")
    s.add_argument("--model", required=True); s.add_argument("--out", required=True); s.add_argument("--n-samples", type=int, required=True)
    s.add_argument("--seed", type=int, default=0); s.add_argument("--batch-size", type=int, default=500); s.add_argument("--threads", type=int)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from domainstudio.data.images import ImageDataError
    from domainstudio.devices import DeviceError
    from domainstudio.metrics.fid import InceptionWeightsMissing
    from domainstudio.metrics.lpips_embedding import LpipsWeightsMissing
    from domainstudio.models import SourceModelError

    try:
        args.func(args)
    except (ImageDataError, SourceModelError, LpipsWeightsMissing, InceptionWeightsMissing, DeviceError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
