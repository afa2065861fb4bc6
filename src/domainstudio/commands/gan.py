"""The GAN-baseline verbs: pre-train, import, adapt (TGAN, FreezeD, EWC, CDC) and sample the source GAN."""
from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

from domainstudio.commands.stage_config import config_blocks, dataclass_from
from domainstudio.devices import set_threads
from domainstudio.fingerprint import digest, resume_key

log = logging.getLogger("domainstudio")


def cmd_pretrain_gan(a):
    import torch

    from domainstudio.atomic import atomic_dir
    from domainstudio.data.images import image_grid, load_image_folder
    from domainstudio.gan.artifact import build_gan, sample_gan, save_gan
    from domainstudio.gan.methods import Adaptation
    from domainstudio.gan.networks import GanNetworkConfig, count_parameters, resolutions
    from domainstudio.gan.train import GanTrainConfig, train_gan

    cfg = config_blocks(a.config_json, {"network", "pretrain"}, "gan config")
    net_cfg = dataclass_from(GanNetworkConfig, cfg.get("network"), "gan.network")
    train_cfg = dataclass_from(GanTrainConfig, cfg.get("pretrain"), "gan.pretrain")
    try:
        resolutions(a.resolution)
        generator, discriminator = build_gan(net_cfg, a.resolution, train_cfg.seed)
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None
    images = load_image_folder(a.images, a.resolution)  # validates every file before training
    set_threads(a.threads)
    log.info("pre-training a GAN (G %d, D %d parameters) on %d images from %s", count_parameters(generator),
             count_parameters(discriminator), len(images), a.images)
    rng = torch.Generator().manual_seed(train_cfg.seed)
    resume = {"checkpoint": a.checkpoint, "snapshot_dir": a.snapshot_dir, "snapshot_every": a.snapshot_every,
              "fingerprint": digest(resume_key(cfg, "pretrain"), a.resolution, images), "keep_final_checkpoint": True}
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

    from domainstudio.manifest import ReleaseError, is_release, verify_release

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

    cfg = config_blocks(a.config_json, {"adapt", "methods"}, "gan adapt config")
    train_cfg = dataclass_from(GanTrainConfig, cfg.get("adapt"), "gan.adapt")
    set_threads(a.threads)
    try:
        methods_cfg = GanMethodsConfig.from_dict(cfg.get("methods"))
        generator, discriminator = load_gan(a.source)
        images = load_image_folder(a.images, generator.resolution, count=a.shots)  # validates before training
        fisher = load_fisher(a.fisher, methods_cfg.ewc, train_cfg.seed) if a.fisher and a.method == "ewc" else None
        torch.manual_seed(train_cfg.seed)
        rng = torch.Generator().manual_seed(train_cfg.seed)
        rule = build_adaptation(a.method, generator, discriminator, methods_cfg, a.shots, rng, fisher, train_cfg.seed)
    except (GanArtifactError, ValueError) as err:
        raise SystemExit(f"error: {err}") from None
    record = {"method": a.method, "family": "gan", "shots": a.shots, "adapt": dataclasses.asdict(train_cfg),
              "method_config": dataclasses.asdict(getattr(methods_cfg, a.method)) if hasattr(methods_cfg, a.method) else {},
              "source": str(a.source), "images": str(a.images)}
    with atomic_dir(a.out) as tmp:
        final, _ = train_gan(generator, discriminator, images, train_cfg, rule, rng, log_csv=tmp / "train_log.csv")
        save_gan(tmp, final, discriminator)
        (tmp / "adaptation.json").write_text(json.dumps(record, indent=2))


def _fisher_record(cfg, seed: int) -> dict:
    return {"ewc": {k: v for k, v in dataclasses.asdict(cfg).items() if k != "weight"}, "seed": seed}


def load_fisher(path: str | Path, cfg, seed: int) -> dict:
    """The Fisher information saved by ewc-fisher, refused when it was computed with other settings or another seed."""
    import torch

    saved = torch.load(path, map_location="cpu", weights_only=True)
    if saved.get("record") != _fisher_record(cfg, seed):
        raise ValueError(f"{path}: the Fisher information was computed with {saved.get('record')}, this run needs "
                         f"{_fisher_record(cfg, seed)}; rerun ewc-fisher")
    return saved["fisher"]


def cmd_ewc_fisher(a):
    import torch

    from domainstudio.atomic import atomic_file
    from domainstudio.gan.artifact import GanArtifactError, load_gan
    from domainstudio.gan.methods import GanMethodsConfig, source_fisher

    set_threads(a.threads)
    try:
        cfg = GanMethodsConfig.from_dict(json.loads(a.config_json)).ewc
        generator, discriminator = load_gan(a.source)
    except (GanArtifactError, ValueError) as err:
        raise SystemExit(f"error: {err}") from None
    fisher = source_fisher(generator, discriminator, cfg, a.seed)
    with atomic_file(a.out) as tmp:
        torch.save({"fisher": fisher, "record": _fisher_record(cfg, a.seed)}, tmp)


def cmd_sample_gan(a):
    from domainstudio.data.images import write_sample_folder
    from domainstudio.gan.artifact import GanArtifactError, load_gan, sample_gan

    set_threads(a.threads)
    try:
        generator, _ = load_gan(a.model)
    except GanArtifactError as err:
        raise SystemExit(f"error: {err}") from None
    images = sample_gan(generator, a.n_samples, a.seed, a.batch_size)
    write_sample_folder(images, {"n_samples": a.n_samples, "seed": a.seed, "batch_size": a.batch_size, "model": str(a.model),
                                 "family": "gan"}, a.out)


def add_verbs(verb) -> None:
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
    s.add_argument("--fisher", help="ewc: the source GAN's Fisher information from ewc-fisher (else computed here, the same way)")
    s.add_argument("--out", required=True); s.add_argument("--threads", type=int)

    s = verb("ewc-fisher", cmd_ewc_fisher, "EWC's Fisher information of the source GAN for one seed (shared by every domain and K)")
    s.add_argument("--source", required=True); s.add_argument("--seed", type=int, required=True)
    s.add_argument("--config-json", required=True, help="the gan.methods block of params.yaml as JSON")
    s.add_argument("--out", required=True); s.add_argument("--threads", type=int)

    s = verb("sample-gan", cmd_sample_gan, "Samples of a GAN, as PNGs plus grid.png (the diffusion sample folder layout)")
    s.add_argument("--model", required=True); s.add_argument("--out", required=True); s.add_argument("--n-samples", type=int, required=True)
    s.add_argument("--seed", type=int, default=0); s.add_argument("--batch-size", type=int, default=500); s.add_argument("--threads", type=int)
