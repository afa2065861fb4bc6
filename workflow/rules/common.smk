# The configuration, checked before any job, and what every rule shares: the world, the thread policy, the
# wildcards and the method families. Run paths are in paths.smk, the params blocks each verb reads in settings.smk.
import json
import os
import shlex
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from domainstudio.params.arguments import (EWC_FISHER, cell_seeds, evaluate_arguments, gan_adapt_config, gan_rules_active,
                                           lpips_arguments, needs_metric_backbone)
from domainstudio.params.checks import ConfigError, check_config, check_t2i_config, embedded_domains
from domainstudio.registry import ANT_METHODS, METHOD_FAMILIES

# Overlays named in the configuration itself (`overlays:` in params.yaml), merged over params.yaml in order and
# under any --configfile/--config of the command line: how `dvc repro`, which takes no --configfile, runs an overlay.
for _overlay in config.get("overlays") or []:
    if not os.path.isfile(_overlay):
        raise WorkflowError(f"params.yaml: overlays: {_overlay} does not exist (paths are relative to the project root)")
    configfile: _overlay


validate(config, schema="../schemas/params.schema.yaml")
try:
    check_config(config)
    check_t2i_config(config)
except ConfigError as err:
    raise WorkflowError(f"params.yaml: {err}") from None

WORLD = config["world"]
RESOLUTION = config["resolution"]
EMBEDDED = config["data"]["kind"] == "embedded"
LPIPS_BACKBONE = config["evaluate"]["backbone"]
FID_BACKBONE = config["evaluate"].get("fid_backbone", "embedded")
EMBEDDED_BACKBONE_RELEASE = config["evaluate"].get("embedded_backbone")
REPORT = config.get("report", {})
T2I = config.get("t2i") or {}

# The diffusion and GAN rules write the same output patterns; each rule constrains {method} to its family.
DIFFUSION_METHODS_RE = "|".join(sorted((m for m, f in METHOD_FAMILIES.items() if f != "gan"), key=len, reverse=True))
GAN_METHODS_RE = "|".join(sorted((m for m, f in METHOD_FAMILIES.items() if f == "gan"), key=len, reverse=True))
GAN_ENABLED = gan_rules_active(config)

# Threads per job. The many small jobs (adaptations, sampling, metrics) take one thread each and run side by side:
# on this project's 32 px models two 1-thread jobs do ~2x the work of one, a 2-thread job only 1.5-1.6x
# (benchmarks/threads.py). The long one-off trainings at the start of the DAG (source model, source GAN, metric
# backbone) take half the cores so that they run beside each other. Profiles override both (set-threads).
# Diffusion adaptations (~2 min) and samplings (~1 min) carry a priority so that the longest jobs start first
# and the run does not end with one long job on one core.
JOB_THREADS = 1
try:
    TRAINING_THREADS = max(1, int(workflow.cores) // 2)
except WorkflowError:  # cluster executors have no total of cores: their profile's set-threads decides
    TRAINING_THREADS = 1


wildcard_constraints:
    world="[A-Za-z0-9_-]+",
    domain="[A-Za-z0-9_-]+",
    shots=r"\d+",
    method="[A-Za-z0-9_-]+",
    seed=r"\d+",
    resolution=r"\d+",
    fid_backbone="embedded|inception",
    table="table1|table2|table3_ablation|table4_shots",
