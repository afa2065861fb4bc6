"""Checks of params.yaml that a JSON schema cannot express; run by the workflow before any job.

Each failure is a ``ConfigError`` whose message names the parameter (and the folder, for user data).
The schema itself (workflow/schemas/params.schema.yaml) is applied first, by Snakemake's ``validate``.
"""
from __future__ import annotations

import json
from pathlib import Path


class ConfigError(ValueError):
    pass


# Every adaptation method the workflow knows, and its family (the tables' ``family`` column). Kept here, free
# of torch, because the Snakefile reads it at parse time; the schema's ``methods`` enum lists the same names.
METHOD_FAMILIES = {
    "ddpm-ft": "ddpm",
    "ds-img": "ddpm",
    "ds-img-hf": "ddpm",
    "domainstudio": "ddpm",
    "domainstudio-paper": "ddpm",
    "domainstudio-official": "ddpm",   # the released code's configuration (adapt.official)
    "ddpm-ft-official": "ddpm",        # plain fine-tuning under the same protocol
    "dpms-ant": "ddpm",   # DPMs-ANT (ICML 2024): adaptors, similarity guidance, adversarial noise (adapt/ant.py)
    # GAN baselines (src/domainstudio/gan/methods.py): TGAN, FreezeD, EWC, CDC
    "tgan": "gan",
    "freezed": "gan",
    "ewc": "gan",
    "cdc": "gan",
}
PAIRWISE_METHODS = ("ds-img", "ds-img-hf", "domainstudio", "domainstudio-paper", "domainstudio-official")
# A relative-distance term compares each sample with the others of its batch through a softmax over j != i: with 2
# samples that softmax has one entry, p = 1 for both models and the KL is 0. Every pairwise term needs at least 3.
MIN_PAIRWISE_SAMPLES = 3
# The two readings of the relative-distance KL (relative_distance.py) and its two reductions over samples.
KL_DIRECTIONS = ("paper", "official")
PAIRWISE_REDUCTIONS = ("sum", "mean")
# Methods trained with adapt.paper's weights and options (the settings the paper's text gives) instead of adapt.weights/options.
PAPER_SETTINGS_METHODS = ("domainstudio-paper",)
# Methods trained and sampled with adapt.official (the released code's configuration): its train block overrides
# adapt.train, its weights and options replace adapt.weights and adapt.options, its sample block overrides sample.
OFFICIAL_SETTINGS_METHODS = ("domainstudio-official", "ddpm-ft-official")
# Methods trained with adapt.ant (DPMs-ANT): adaptors on the frozen source, a domain classifier on the source images.
ANT_METHODS = ("dpms-ant",)
# EWC's Fisher information of the source GAN, one file per seed for every domain and K (rule ewc_fisher).
EWC_FISHER = "models/{world}/ewc_fisher/seed{seed}.pt"


def adapt_settings(adapt: dict, method: str) -> dict:
    """The train, weights and options blocks a diffusion method (not dpms-ant) adapts with: adapt.official's for the
    released code's rows (its train block over adapt.train), adapt.paper's for the paper-settings row, else the tuned
    adapt.weights and adapt.options."""
    if method in OFFICIAL_SETTINGS_METHODS:
        official = adapt["official"]
        return {"train": {**adapt["train"], **official.get("train", {})}, "weights": official["weights"],
                "options": official.get("options", {})}
    terms = adapt["paper"] if method in PAPER_SETTINGS_METHODS else adapt
    return {"train": dict(adapt["train"]), "weights": terms["weights"], "options": terms.get("options", {})}


def sample_settings(config: dict, method: str) -> dict:
    """params.yaml's sample block for one method's runs: adapt.official.sample over it for the released code's rows."""
    override = config["adapt"].get("official", {}).get("sample", {}) if method in OFFICIAL_SETTINGS_METHODS else {}
    return {**config["sample"], **override}


def gan_rules_active(config: dict) -> bool:
    """Whether the workflow needs its GAN rules: a table has a GAN row (config/baselines.yaml), or the source GAN is
    trained here (``gan.pretrained: null``, config/release.yaml). A configuration without a gan: section has none."""
    gan_rows = any(METHOD_FAMILIES.get(m) == "gan" for m in config["methods"])
    return gan_rows or ("gan" in config and not config["gan"].get("pretrained"))


def gan_adapt_config(gan: dict, method: str, seed: int | str) -> dict:
    """The ``--config-json`` of ``adapt-gan`` for one run: params.yaml's shared ``gan.adapt`` settings with the run's
    seed, and only this method's block of ``gan.methods`` (so that changing one method reruns only its jobs)."""
    return {"adapt": {**gan["adapt"], "seed": int(seed)},
            "methods": {k: v for k, v in gan["methods"].items() if k == method}}


def needs_metric_backbone(evaluate: dict, embedded_world: bool) -> bool:
    """Whether scoring a run reads the embedded metric backbone: as the LPIPS or FID network, or (embedded worlds)
    for factor diversity and in-domain."""
    return embedded_world or "embedded" in (evaluate["backbone"], evaluate.get("fid_backbone", "embedded"))


def lpips_arguments(evaluate: dict, metric_backbone: str | None) -> list[str]:
    """The LPIPS network arguments of the verbs that compute Intra-LPIPS (evaluate, intra-lpips) from params.yaml's
    evaluate block; ``metric_backbone``: the embedded backbone's folder, when the job reads it."""
    args = ["--backbone", evaluate["backbone"]]
    if metric_backbone:
        args += ["--embedded-backbone", metric_backbone]
    if evaluate.get("resize"):
        args += ["--resize", evaluate["resize"]]
    if evaluate.get("lpips_samples"):
        args += ["--max-samples", evaluate["lpips_samples"]]
    return [str(a) for a in args]


def evaluate_arguments(evaluate: dict, resolution: int, run: dict, *, samples: str, train: str, reference: str,
                       reference_stats: str, metric_backbone: str | None, out: str, diversity: bool, threads: int) -> list[str]:
    """The arguments of ``domainstudio evaluate`` for one run: rule evaluate's command, and the one
    experiments/main_job_scoring.py scores extra samples with. ``evaluate``: params.yaml's evaluate block; ``run``:
    world, domain, shots, method, family and seed, recorded in every metric file; ``out``: the run's metrics folder
    (intra_lpips.json, fid.json, fidelity.json and, with ``diversity``, diversity.json)."""
    args = ["--samples", samples, "--train", train, "--shots", run["shots"], "--reference", reference,
            "--reference-stats", reference_stats, "--resolution", resolution, *lpips_arguments(evaluate, metric_backbone)]
    args += ["--fid-backbone", evaluate.get("fid_backbone", "embedded"), "--cluster-cap", evaluate["cluster_cap"],
             "--near-copy-quantile", evaluate.get("near_copy_quantile", 0.05), "--seed", evaluate["seed"],
             "--c2st-json", json.dumps(evaluate.get("c2st", {}), sort_keys=True), "--prdc-k", evaluate.get("prdc_k", 5),
             "--swd-json", json.dumps(evaluate.get("swd", {}), sort_keys=True),
             "--threads", threads, "--intra-lpips-out", f"{out}/intra_lpips.json", "--fid-out", f"{out}/fid.json",
             "--fidelity-out", f"{out}/fidelity.json"]
    if diversity:
        args += ["--diversity", f"{out}/diversity.json"]
    args += ["--meta", *(f"{key}={run[key]}" for key in ("world", "domain", "shots", "method", "family", "seed"))]
    return [str(a) for a in args]


def check_choices(options, where: str, choices: dict[str, tuple]) -> None:
    """Each named field of an options dataclass is one of its choices; a ValueError names ``where.field``."""
    for name, allowed in choices.items():
        value = getattr(options, name)
        if value not in allowed:
            raise ValueError(f"{where}.{name}: one of {list(allowed)}, not {value!r}")


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
            raise ConfigError(f"world: {world!r} is not an embedded world (available: faces); "
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
    if config["evaluate"]["cluster_cap"] < 2:
        raise ConfigError("evaluate.cluster_cap: must be at least 2")
    _check_report(config)


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
