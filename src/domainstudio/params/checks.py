"""Checks of params.yaml that a JSON schema cannot express; run by the workflow before any job.

Each failure is a ``ConfigError`` whose message names the parameter (and the folder, for user data).
The schema itself (workflow/schemas/params.schema.yaml) is applied first, by Snakemake's ``validate``.
"""
from __future__ import annotations

import json
from pathlib import Path

from domainstudio.models import is_hub_id
from domainstudio.params.arguments import adapt_settings, gan_rules_active, needs_metric_backbone
from domainstudio.registry import (ANT_METHODS, METHOD_FAMILIES, MIN_PAIRWISE_SAMPLES, OFFICIAL_SETTINGS_METHODS,
                                   PAIRWISE_METHODS)
from domainstudio.t2i import T2I_METHODS


class ConfigError(ValueError):
    pass


def embedded_worlds() -> list[str]:
    """The names of the embedded worlds (domainstudio.data.world.WORLDS)."""
    from domainstudio.data.world import WORLDS

    return sorted(WORLDS)


def embedded_domains(world: str) -> tuple[str, ...] | None:
    """The target domains of an embedded world, or None if ``world`` is not an embedded world."""
    from domainstudio.data.world import WORLDS

    module = WORLDS.get(world)
    return None if module is None else tuple(module.TARGET_DOMAINS)


def check_kshot_sets(config: dict, domains: list[str], shots: list[int], names: tuple[str, str] = ("domains", "shots"),
                     root: str | Path = ".") -> None:
    """Every (domain, K) to adapt on exists: a target domain and a rendered shot set of an embedded world, or a
    folder data/<world>/<domain>/<K>shot with at least K images. ``names`` are the parameters named in errors."""
    world, data = config["world"], config["data"]
    domains_key, shots_key = names
    if data["kind"] == "embedded":
        available = embedded_domains(world)
        if available is None:
            raise ConfigError(f"world: {world!r} is not an embedded world (available: {', '.join(embedded_worlds())}); "
                              f"set data.kind: folders to use images under data/{world}/")
        unknown = [d for d in domains if d not in available]
        if unknown:
            raise ConfigError(f"{domains_key}: {unknown} are not target domains of the embedded world {world!r} (available: {list(available)})")
        too_many = [k for k in shots if k not in data["shot_sets"]]
        if too_many:
            raise ConfigError(f"{shots_key}: {too_many} not among data.shot_sets {data['shot_sets']}; every K-shot set to adapt on must be rendered")
        return
    from domainstudio.data.images import ImageDataError, list_images

    for domain in domains:
        for k in shots:
            folder = Path(root) / "data" / world / domain / f"{k}shot"
            try:
                n = len(list_images(folder))
            except ImageDataError as err:
                raise ConfigError(f"{shots_key}/{domains_key}: {err}") from None
            if n < k:
                raise ConfigError(f"{shots_key}: {k}-shot adaptation needs {k} images but {folder} has {n}")


def check_config(config: dict, root: str | Path = ".") -> None:
    root = Path(root)
    world, data = config["world"], config["data"]
    check_kshot_sets(config, config["domains"], config["shots"], root=root)
    if data["kind"] != "embedded":
        if config["source"]["kind"] == "pretrain" and not (root / "data" / world / "source").is_dir():
            raise ConfigError(f"source.kind: pretrain needs the source images in {root / 'data' / world / 'source'} (not found)")
        report_methods = [m for b in config.get("report", {}).values() for m in b.get("methods", [])]
        ant = sorted({m for m in [*config["methods"], *report_methods] if m in ANT_METHODS})
        if ant and not (root / "data" / world / "source").is_dir():
            raise ConfigError(f"methods: {ant} train a domain classifier on the source images, which must be in "
                              f"{root / 'data' / world / 'source'} (not found); add them or drop {ant} from methods and report.*.methods")
    source = config["source"]
    if source["kind"] == "pretrained" and not source.get("pretrained"):
        raise ConfigError("source.pretrained: must name a hub id or a local diffusers folder when source.kind is 'pretrained'")
    if source["kind"] == "pretrained" and source.get("adm") and not (root / source["pretrained"]).is_file():
        raise ConfigError(f"source.pretrained: source.adm says it is a guided-diffusion .pt checkpoint, but there is no file "
                          f"{root / source['pretrained']}; put the checkpoint there (docs/paper_scale.md names where to get it)")
    pairwise = any(m in PAIRWISE_METHODS for m in config["methods"])
    if pairwise and config["adapt"]["train"].get("batch_size", MIN_PAIRWISE_SAMPLES) < MIN_PAIRWISE_SAMPLES:
        raise ConfigError(f"adapt.train.batch_size: the relative-distance terms of {', '.join(PAIRWISE_METHODS)} compare each "
                          f"sample with the others of its batch and need a batch size of at least {MIN_PAIRWISE_SAMPLES}")
    _check_official(config, config["methods"])
    embedded_metrics = [k for k in ("backbone", "fid_backbone") if config["evaluate"].get(k) == "embedded"]
    if embedded_metrics and data["kind"] != "embedded":
        raise ConfigError(f"evaluate.{embedded_metrics[0]}: the embedded backbone is trained on an embedded world's rendered "
                          "images; with data.kind 'folders' choose alex/vgg (LPIPS) and inception (FID)")
    _check_releases(config, root)
    if config["evaluate"]["cluster_cap"] < 2:
        raise ConfigError("evaluate.cluster_cap: must be at least 2")
    _check_extra_seeds(config)
    _check_report(config)
    _check_backbone_domains(config, root)


def _check_backbone_domains(config: dict, root: Path) -> None:
    """In an embedded world the embedded backbone is one of this world, and every domain scored is one it knows: its
    heads read one world's domains and factors, trained on a fixed set of domains (the release's backbone.json
    records both)."""
    if config["data"]["kind"] != "embedded" or embedded_domains(config["world"]) is None:
        return
    scored = {*config["domains"], *(d for b in config.get("report", {}).values() for d in b.get("domains", []))}
    release = config["evaluate"].get("embedded_backbone")
    if release:
        meta = root / release / "backbone.json"
        if not meta.is_file():
            return  # importing the release names the missing file
        trained = json.loads(meta.read_text())
        if trained["world"] != config["world"]:
            raise ConfigError(f"evaluate.embedded_backbone: {release} was trained on the embedded world {trained['world']!r}, "
                              f"not {config['world']!r}; its heads read only that world's domains and factors")
        known = trained["report"]["domains"]
        where = f"evaluate.embedded_backbone: {release} is trained on {known}"
        fix = ("load a backbone released with them (config/photos.yaml loads releases/faces/32px/metric_backbone_with_photos), "
               "or set evaluate.embedded_backbone: null and name them in evaluate.backbone_train.domains to train one here")
    else:
        from domainstudio.data.world import backbone_domains

        names = config["evaluate"].get("backbone_train", {}).get("domains")
        try:
            known = backbone_domains(config["world"], names)
        except ValueError as err:
            raise ConfigError(str(err)) from None
        where = f"evaluate.backbone_train.domains: {names if names is not None else 'null'} trains the backbone on {list(known)}"
        fix = "name them in evaluate.backbone_train.domains (config/photos.yaml names all five)"
    missing = sorted(scored - set(known))
    if missing:
        raise ConfigError(f"{where} and cannot score {missing} (its features and in-domain head do not know them); {fix}")


def _check_extra_seeds(config: dict) -> None:
    """Every extra_seeds block names domains and methods of the tables (a block for a cell no table has would run
    nothing, silently)."""
    for i, block in enumerate(config.get("extra_seeds", [])):
        for key in ("domains", "methods"):
            unknown = [v for v in block[key] if v not in config[key]]
            if unknown:
                raise ConfigError(f"extra_seeds[{i}].{key}: {unknown} are not among {key} {config[key]}")


def _check_releases(config: dict, root: Path) -> None:
    """Every release folder the configuration loads (source DDPM, source GAN, embedded metric backbone) is there, so
    that a world whose releases are not trained yet stops before any job."""
    world, res = config["world"], config["resolution"]
    source, backbone = config["source"], config["evaluate"].get("embedded_backbone")
    loaded = []  # (parameter, folder, release name)
    if source["kind"] == "pretrained" and source.get("pretrained") and not source.get("adm") and not is_hub_id(source["pretrained"]):
        loaded.append(("source.pretrained", source["pretrained"], "ddpm"))
    gan = config.get("gan") or {}  # a GAN row without a gan: section is refused by _check_report
    if gan_rules_active(config) and gan.get("pretrained"):
        loaded.append(("gan.pretrained", gan["pretrained"], "gan"))
    if backbone and needs_metric_backbone(config["evaluate"], config["data"]["kind"] == "embedded"):
        loaded.append(("evaluate.embedded_backbone", backbone, "metric_backbone"))
    missing = [(key, folder, name) for key, folder, name in loaded if not (root / folder).is_dir()]
    if missing:
        targets = " ".join(f"results/releases/{world}/{res}px/{name}" for _, _, name in missing)
        raise ConfigError(f"{'; '.join(f'{key}: {folder} does not exist' for key, folder, _ in missing)}. A release not "
                          f"trained yet is built by `snakemake --cores all {targets} --configfile <overlays> config/release.yaml` "
                          f"(release.yaml last) and then copied there (docs/releases.md)")


def _check_official(config: dict, methods) -> None:
    """The released code's rows need adapt.official, and its batch must split into pairwise_groups equal groups of at
    least 3 samples (each group is one of the release's GPUs)."""
    official = sorted({m for m in methods if m in OFFICIAL_SETTINGS_METHODS})
    if not official:
        return
    if "official" not in config["adapt"]:
        raise ConfigError(f"adapt.official: methods {official} train with the released code's settings, which adapt.official gives")
    settings = adapt_settings(config["adapt"], official[0])
    batch = settings["train"].get("batch_size", MIN_PAIRWISE_SAMPLES)
    groups = settings["options"].get("pairwise_groups") or 1
    if batch % groups or batch // groups < MIN_PAIRWISE_SAMPLES:
        raise ConfigError(f"adapt.official.train.batch_size: {batch} must split into adapt.official.options.pairwise_groups = "
                          f"{groups} equal groups of at least {MIN_PAIRWISE_SAMPLES} samples")


def _check_report(config: dict) -> None:
    """report.ablation / report.shots name methods the workflow knows and shots the data provides."""
    report = config.get("report", {})
    for part in ("ablation", "shots"):
        block = report.get(part, {})
        unknown = [m for m in block.get("methods", []) if m not in METHOD_FAMILIES]
        if unknown:
            raise ConfigError(f"report.{part}.methods: unknown method(s) {unknown}; known: {sorted(METHOD_FAMILIES)}")
        if config["data"]["kind"] != "embedded":
            bad = [d for d in block.get("domains", []) if d not in config["domains"]]
            if bad:
                raise ConfigError(f"report.{part}.domains: {bad} not among domains {config['domains']} (their folders are checked there)")
        else:
            domains = embedded_domains(config["world"]) or ()
            bad = [d for d in block.get("domains", []) if d not in domains]
            if bad:
                raise ConfigError(f"report.{part}.domains: {bad} are not target domains of {config['world']!r} (available: {list(domains)})")
            shots = [k for k in report.get("shots", {}).get("shots", []) if k not in config["data"]["shot_sets"]]
            if part == "shots" and shots:
                raise ConfigError(f"report.shots.shots: {shots} not among data.shot_sets {config['data']['shot_sets']}")
    if (any(m in PAIRWISE_METHODS for b in report.values() for m in b.get("methods", []))
            and config["adapt"]["train"].get("batch_size", MIN_PAIRWISE_SAMPLES) < MIN_PAIRWISE_SAMPLES):
        raise ConfigError(f"adapt.train.batch_size: report methods with relative-distance terms need a batch size of at least {MIN_PAIRWISE_SAMPLES}")
    _check_official(config, [m for b in report.values() for m in b.get("methods", [])])
    gan_methods = [m for m in config["methods"] if METHOD_FAMILIES.get(m) == "gan"]
    if gan_rules_active(config):
        if "gan" not in config:
            raise ConfigError(f"gan: methods {gan_methods} are GAN baselines and need the gan: section of params.yaml")
        res = config["resolution"]
        if res < 8 or res & (res - 1):
            raise ConfigError(f"resolution: the GAN baselines {gan_methods or '(the source GAN trained here)'} need a power "
                              f"of two of at least 8, not {res}")
        patch = config["gan"].get("network", {}).get("patch_resolution", 8)
        feature_batch = config["gan"].get("methods", {}).get("cdc", {}).get("feature_batch", MIN_PAIRWISE_SAMPLES)
        if "cdc" in gan_methods and feature_batch < MIN_PAIRWISE_SAMPLES:
            raise ConfigError(f"gan.methods.cdc.feature_batch: CDC's distance consistency compares each sample with the others "
                              f"and needs at least {MIN_PAIRWISE_SAMPLES}, not {feature_batch}")
        if "cdc" in gan_methods and not 4 <= patch < res:
            raise ConfigError(f"gan.network.patch_resolution: CDC's patch discriminator needs a feature map between 4 and {res // 2} px, not {patch}")


def check_t2i_config(config: dict, root: str | Path = ".") -> None:
    """The ``t2i`` block: known methods, K-shot sets that exist, a batch the pairwise terms can use, a pipeline."""
    t2i = config.get("t2i") or {}
    if not t2i.get("enabled", False):
        return
    unknown = [m for m in t2i["methods"] if m not in T2I_METHODS]
    if unknown:
        raise ConfigError(f"t2i.methods: {unknown} unknown (known: {sorted(T2I_METHODS)})")
    check_kshot_sets(config, t2i["domains"], t2i["shots"], ("t2i.domains", "t2i.shots"), root)
    weights = t2i.get("weights", {})
    pairwise = weights.get("l_img", 0) > 0 or weights.get("l_hf", 0) > 0
    if pairwise and any(T2I_METHODS[m] for m in t2i["methods"]) and t2i["train"].get("batch_size", 4) < MIN_PAIRWISE_SAMPLES:
        raise ConfigError("t2i.train.batch_size: the relative-distance terms of domainstudio-t2i compare the samples of a "
                          f"batch half and need a batch size of at least {MIN_PAIRWISE_SAMPLES}")
    options = t2i.get("options") or {}
    if options.get("reference_gradient", "detach") == "flow" and options.get("pairwise_reference", "source") != "class-half":
        raise ConfigError("t2i.options.reference_gradient: 'flow' needs pairwise_reference 'class-half' "
                          "(the frozen source model of pairwise_reference 'source' takes no gradient)")
    pipeline = str(t2i["pipeline"])
    if pipeline != "tiny" and not Path(root, pipeline).exists() and pipeline.count("/") != 1:
        raise ConfigError(f"t2i.pipeline: {pipeline!r} is neither 'tiny', a local folder, nor a hub id 'owner/name'")
