# Configuration checks and the helpers the rules use. No rule logic lives anywhere else.
import json

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from domainstudio.config import METHOD_FAMILIES, ConfigError, check_config

validate(config, schema="../schemas/params.schema.yaml")
try:
    check_config(config)
except ConfigError as err:
    raise WorkflowError(f"params.yaml: {err}") from None

WORLD = config["world"]
RESOLUTION = config["resolution"]


wildcard_constraints:
    world="[A-Za-z0-9_-]+",
    domain="[A-Za-z0-9_-]+",
    shots=r"\d+",
    method="[A-Za-z0-9_-]+",
    seed=r"\d+",


def runs():
    """Every (domain, shots, method, seed) the configuration asks for."""
    return [
        dict(world=WORLD, domain=d, shots=k, method=m, seed=s)
        for d in config["domains"]
        for k in config["shots"]
        for m in config["methods"]
        for s in config["seeds"]
    ]


def intra_lpips_files():
    return [
        "results/metrics/{world}/{domain}/{shots}shot/{method}/seed{seed}/intra_lpips.json".format(**r)
        for r in runs()
    ]


def final_outputs():
    figures = [f"samples/{WORLD}/source/seed0"]  # holds grid.png
    if config["data"]["kind"] == "embedded":
        figures.append(f"results/figures/{WORLD}_domains.png")
    if GAN_ENABLED:
        figures.append(f"samples/{WORLD}/source_gan/seed0")  # the source GAN's grid.png
    return ["results/table1.csv", *figures]


def source_config_json():
    return json.dumps({k: config["source"][k] for k in ("unet", "scheduler", "train") if k in config["source"]})


def adapt_config_json(wildcards):
    train = {**config["adapt"]["train"], "seed": int(wildcards.seed)}
    return json.dumps({"train": train, "weights": config["adapt"]["weights"], "options": config["adapt"].get("options", {})})


def sample_config_json(wildcards):
    return json.dumps({**config["sample"], "seed": int(wildcards.seed)})


def source_sample_config_json(wildcards):
    """The source model's own samples: no hand-over to another model."""
    return json.dumps({**config["sample"], "seed": int(wildcards.seed), "source_above_t": None})


def method_family(wildcards):
    """The method's family (ddpm or gan), recorded in every metric file and table row."""
    return METHOD_FAMILIES[wildcards.method]


# -- GAN baselines (workflow/rules/gan.smk) ------------------------------------------------------------------
# The diffusion and GAN rules write the same output patterns; each rule constrains {method} to its family.
DIFFUSION_METHODS_RE = "|".join(sorted((m for m, f in METHOD_FAMILIES.items() if f != "gan"), key=len, reverse=True))
GAN_METHODS_RE = "|".join(sorted((m for m, f in METHOD_FAMILIES.items() if f == "gan"), key=len, reverse=True))
GAN_ENABLED = any(METHOD_FAMILIES.get(m) == "gan" for m in config["methods"])


def gan_pretrain_config_json():
    return json.dumps({k: config["gan"][k] for k in ("network", "pretrain")})


def gan_adapt_config_json(wildcards):
    """The shared adaptation settings and only this method's block, so changing one method reruns only its jobs."""
    methods = {k: v for k, v in config["gan"]["methods"].items() if k == wildcards.method}
    return json.dumps({"adapt": {**config["gan"]["adapt"], "seed": int(wildcards.seed)}, "methods": methods})


def gan_sample_batch_size():
    return config["gan"].get("sample", {}).get("batch_size", 500)
