"""What the workflow's rules pass to the verbs, built from params.yaml: each method's settings, the verbs' arguments,
and which optional rules are active. Snakemake's rule files (workflow/rules/settings.smk) and the experiments that
run a verb the way a rule does call these."""
from __future__ import annotations

import json

from domainstudio.registry import METHOD_FAMILIES, OFFICIAL_SETTINGS_METHODS, PAPER_SETTINGS_METHODS

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


def cell_seeds(config: dict, domain: str, method: str) -> list[int]:
    """The seeds one (domain, method) cell runs: ``seeds``, plus those of every ``extra_seeds`` block naming the cell
    (more seeds where a claim is undecided at the common ones: experiments/seeds_to_decide.py writes the blocks)."""
    extra = [s for block in config.get("extra_seeds", []) if domain in block["domains"] and method in block["methods"]
             for s in block["seeds"]]
    return sorted({*config["seeds"], *extra})


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
