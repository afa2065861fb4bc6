# Configuration checks and the helpers the rules use. No rule logic lives anywhere else.
import json

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from domainstudio.config import METHOD_FAMILIES, ConfigError, check_config, embedded_domains

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


wildcard_constraints:
    world="[A-Za-z0-9_-]+",
    domain="[A-Za-z0-9_-]+",
    shots=r"\d+",
    method="[A-Za-z0-9_-]+",
    seed=r"\d+",
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
TABLE_METRICS = {
    "table1": ["intra_lpips", "diversity"],
    "table2": ["fid", "diversity"],
    "table3_ablation": ["intra_lpips", "fid", "diversity"],
    "table4_shots": ["intra_lpips", "fid", "diversity"],
}
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
    names = [n for n in TABLE_METRICS[wildcards.table] if n != "diversity" or EMBEDDED]
    return [f for n in names for f in metric_files(n, table_runs(wildcards.table))]


def intra_lpips_files():
    return metric_files("intra_lpips")


def final_outputs():
    figures = [f"samples/{WORLD}/source/seed0"]  # holds grid.png
    if EMBEDDED:
        figures.append(f"results/figures/{WORLD}_domains.png")
    return ["results/report.md", *figures]


def report_figures():
    names = ["samples", "intra_lpips", "fid"] + [f"{d}_nearest" for d in config["domains"]]
    return [f"results/figures/{WORLD}_{n}.png" for n in names]


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
    return args
