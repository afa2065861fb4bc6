# Configuration checks and the helpers the rules use. No rule logic lives anywhere else.
import json
import os

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from domainstudio.config import METHOD_FAMILIES, PAPER_SETTINGS_METHODS, ConfigError, check_config, embedded_domains

validate(config, schema="../schemas/params.schema.yaml")
try:
    check_config(config)
except ConfigError as err:
    raise WorkflowError(f"params.yaml: {err}") from None

WORLD = config["world"]
RESOLUTION = config["resolution"]
EMBEDDED = config["data"]["kind"] == "embedded"
LPIPS_BACKBONE = config["evaluate"]["backbone"]
FID_BACKBONE = config["evaluate"].get("fid_backbone", "embedded")

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


def runs(domains=None, shots=None, methods=None):
    """Every (domain, shots, method, seed) of the main tables, or of a report overlay's subset."""
    return [
        dict(world=WORLD, domain=d, shots=k, method=m, seed=s)
        for d in (domains or config["domains"])
        for k in (shots or config["shots"])
        for m in (methods or config["methods"])
        for s in config["seeds"]
    ]


def run_dir(r):
    return f"results/metrics/{r['world']}/{r['domain']}/{r['shots']}shot/{r['method']}/seed{r['seed']}"


def metric_files(name, selection=None):
    """One metric file per run: intra_lpips, fid, or diversity (embedded worlds only)."""
    return [f"{run_dir(r)}/{name}.json" for r in (runs() if selection is None else selection)]


REPORT = config.get("report", {})
TABLES = ["table1", "table2", "table3_ablation", "table4_shots"]
TABLE_REPORTED = {"table1": "--reported intra_lpips", "table2": "--reported fid"}


def table_runs(table):
    if table == "table3_ablation":
        a = REPORT.get("ablation", {})
        return runs(a.get("domains"), None, a.get("methods"))
    if table == "table4_shots":
        s = REPORT.get("shots", {})
        return runs(s.get("domains"), s.get("shots"), s.get("methods"))
    return runs()


def table_inputs(wildcards):
    names = ["intra_lpips", "fid"] + ["diversity"] * EMBEDDED  # one evaluate job writes all of a run's files
    return [f for n in names for f in metric_files(n, table_runs(wildcards.table))]


def intra_lpips_files():
    return metric_files("intra_lpips")


def final_outputs():
    figures = [f"samples/{WORLD}/source/seed0"]  # holds grid.png
    if EMBEDDED:
        figures.append(f"results/figures/{WORLD}_domains.png")
    if GAN_ENABLED:
        figures.append(f"samples/{WORLD}/source_gan/seed0")  # the source GAN's grid.png
    return ["results/report.md", *figures, *t2i_outputs()]


def report_figures():
    names = ["samples", "intra_lpips", "fid"] + [f"{d}_nearest" for d in config["domains"]]
    return [f"results/figures/{WORLD}_{n}.png" for n in names]


def source_release_input(wildcards):
    """A local source model folder (a release) is an input, so that replacing it reruns what depends on it; a hub id is not a file."""
    path = config["source"].get("pretrained")
    return [path] if path and os.path.isdir(path) else []


def source_snapshot_args(wildcards):
    """The trainer's (EMA) weights every source.quality.snapshot_every steps, for the release's quality curve."""
    every = config["source"].get("quality", {}).get("snapshot_every", 0)
    return f"--snapshot-dir {source_snapshot_dir(wildcards)} --snapshot-every {every}" if every else ""


def source_snapshot_dir(wildcards):
    return f"checkpoints/{wildcards.world}/source_snapshots"


def release_command(wildcards, output):
    """The command a release's manifest records as the one that regenerates it (workflow/rules/release.smk); the
    target goes before --configfile, which would take it for a second config file."""
    return f"snakemake --cores all {output} --configfile config/release.yaml"


def source_config_json():
    return json.dumps({k: config["source"][k] for k in ("unet", "scheduler", "train") if k in config["source"]})


def adapt_config_json(wildcards):
    """The training settings, and the weights and options of the method: adapt.paper's for the paper-settings row."""
    train = {**config["adapt"]["train"], "seed": int(wildcards.seed)}
    terms = config["adapt"]["paper"] if wildcards.method in PAPER_SETTINGS_METHODS else config["adapt"]
    return json.dumps({"train": train, "weights": terms["weights"], "options": terms.get("options", {})})


def sample_config_json(wildcards):
    return json.dumps({**config["sample"], "seed": int(wildcards.seed)})


def source_sample_config_json(wildcards):
    """The source model's own samples: no hand-over to another model."""
    return json.dumps({**config["sample"], "seed": int(wildcards.seed), "source_above_t": None})


def method_family(wildcards):
    """The method's family (ddpm or gan), recorded in every metric file and table row."""
    return METHOD_FAMILIES[wildcards.method]


EMBEDDED_BACKBONE_RELEASE = config["evaluate"].get("embedded_backbone")


def lpips_backbone_input(wildcards):
    """The trained metric backbone, when LPIPS uses it."""
    return [f"models/{wildcards.world}/metric_backbone"] if LPIPS_BACKBONE == "embedded" else []


def fid_backbone_input(wildcards):
    return [f"models/{wildcards.world}/metric_backbone"] if FID_BACKBONE == "embedded" else []


def lpips_backbone_args(wildcards, input):
    args = f"--backbone {LPIPS_BACKBONE}"
    if input.backbone:
        args += f" --embedded-backbone {input.backbone}"
    if config["evaluate"].get("resize"):
        args += f" --resize {config['evaluate']['resize']}"
    if config["evaluate"].get("lpips_samples"):
        args += f" --max-samples {config['evaluate']['lpips_samples']}"
    return args


# -- text-to-image (rules in t2i.smk) ------------------------------------------------------------------------------
from domainstudio.t2i.config import check_t2i_config

try:
    check_t2i_config(config)
except ConfigError as err:
    raise WorkflowError(f"params.yaml: {err}") from None

T2I = config.get("t2i") or {}


def t2i_runs():
    """Every (domain, shots, method, seed) of the text-to-image branch."""
    return [
        dict(world=WORLD, domain=d, shots=k, method=m, seed=s)
        for d in T2I["domains"]
        for k in T2I["shots"]
        for m in T2I["methods"]
        for s in T2I["seeds"]
    ]


def t2i_intra_lpips_files():
    return [
        "results/metrics/{world}/t2i/{domain}/{shots}shot/{method}/seed{seed}/intra_lpips.json".format(**r)
        for r in t2i_runs()
    ]


def t2i_outputs():
    return ["results/t2i_table.csv"] if T2I.get("enabled", False) else []


def t2i_pipeline(wildcards):
    """The source pipeline: the tiny one this workflow builds, or a hub id / local folder."""
    return f"models/{wildcards.world}/t2i/tiny-sd" if T2I["pipeline"] == "tiny" else T2I["pipeline"]


def t2i_pipeline_input(wildcards):
    """The tiny pipeline (built by a rule) or a local folder is an input; a hub id is not a file."""
    path = t2i_pipeline(wildcards)
    return [path] if T2I["pipeline"] == "tiny" or os.path.isdir(path) else []


def t2i_sample_json():
    return json.dumps({k: v for k, v in T2I["sample"].items()})


def t2i_class_sample_json():
    """The class images use the sampling settings, not its prompts or counts (the rule passes those)."""
    return json.dumps({k: v for k, v in T2I["sample"].items() if k not in ("prompts", "n_per_prompt")})


def t2i_adapt_config_json(wildcards):
    train = {**T2I["train"], "seed": int(wildcards.seed)}
    return json.dumps({"train": train, "weights": T2I["weights"], "options": T2I["options"],
                       "instance_prompt": T2I["instance_prompt"], "class_prompt": T2I["class_prompt"]})


# -- GAN baselines (workflow/rules/gan.smk) ------------------------------------------------------------------
# The diffusion and GAN rules write the same output patterns; each rule constrains {method} to its family.
DIFFUSION_METHODS_RE = "|".join(sorted((m for m, f in METHOD_FAMILIES.items() if f != "gan"), key=len, reverse=True))
GAN_METHODS_RE = "|".join(sorted((m for m, f in METHOD_FAMILIES.items() if f == "gan"), key=len, reverse=True))
GAN_ENABLED = any(METHOD_FAMILIES.get(m) == "gan" for m in config["methods"])


def gan_pretrain_config_json():
    return json.dumps({k: config["gan"][k] for k in ("network", "pretrain")})


def gan_snapshot_args(wildcards):
    """The pre-training's generator every gan.quality.snapshot_every steps, for the release's quality curve."""
    every = config["gan"].get("quality", {}).get("snapshot_every", 0)
    return f"--snapshot-dir {gan_snapshot_dir(wildcards)} --snapshot-every {every}" if every else ""


def gan_snapshot_dir(wildcards):
    return f"checkpoints/{wildcards.world}/source_gan_snapshots"


def gan_release_input(wildcards):
    """gan.pretrained as an input when it is a folder here (a release, verified on import), as for the source DDPM."""
    path = config["gan"]["pretrained"]
    return [path] if os.path.isdir(path) else []


def gan_adapt_config_json(wildcards):
    """The shared adaptation settings and only this method's block, so changing one method reruns only its jobs."""
    methods = {k: v for k, v in config["gan"]["methods"].items() if k == wildcards.method}
    return json.dumps({"adapt": {**config["gan"]["adapt"], "seed": int(wildcards.seed)}, "methods": methods})


def gan_sample_batch_size():
    return config["gan"].get("sample", {}).get("batch_size", 500)
