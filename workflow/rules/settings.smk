# What each verb reads from params.yaml: the blocks passed as --config-json, and the arguments and inputs that
# depend on the configuration (backbones, releases, snapshots, a table's runs). Every input and params function of a
# rule is a named function here; rules carry no lambdas. Changing a block reruns only the jobs that read it.
from domainstudio.data.world import backbone_domains, backbone_release_name
from domainstudio.params.arguments import adapt_settings, sample_settings


def source_release_input(wildcards):
    """A local source model folder (a release) is an input, so that replacing it reruns what depends on it; a hub id is not a file."""
    path = config["source"].get("pretrained")
    return [path] if path and os.path.exists(path) else []


def adm_config_json():
    """A guided-diffusion checkpoint's flags (source.adm) for its one-time conversion by import_source; {}: none."""
    return json.dumps(config["source"].get("adm") or {})


def source_snapshot_args(wildcards):
    """The trainer's (EMA) weights every source.quality.snapshot_every steps, for the release's quality curve."""
    every = config["source"].get("quality", {}).get("snapshot_every", 0)
    return f"--snapshot-dir {source_snapshot_dir(wildcards)} --snapshot-every {every}" if every else ""


def source_snapshot_dir(wildcards):
    return f"checkpoints/{wildcards.world}/source_snapshots"


def release_command(wildcards, output):
    """The command a release's manifest records as the one that regenerates it (workflow/rules/release.smk): the
    command line's overlays (a world's, then config/release.yaml); the target goes before --configfile, which would
    take it for a second config file."""
    overlays = [os.path.relpath(path) for path in workflow.overwrite_configfiles] or ["config/release.yaml"]
    return f"snakemake --cores all {output} --configfile {' '.join(overlays)}"


def calibrate_arguments(wildcards, input):
    """The calibrate job's settings: evaluate.calibration, and the two-sample test, SWD, k and seed the evaluate jobs use."""
    evaluate = config["evaluate"]
    return shlex.join(["--config-json", json.dumps(evaluate.get("calibration", {})), "--c2st-json", json.dumps(evaluate.get("c2st", {})),
                       "--swd-json", json.dumps(evaluate.get("swd", {})),
                       "--prdc-k", str(evaluate.get("prdc_k", 5)), "--seed", str(evaluate["seed"]),
                       "--backbone-name", EMBEDDED_BACKBONE_RELEASE or f"trained ({input.backbone})"])


def source_config_json():
    return json.dumps({k: config["source"][k] for k in ("unet", "scheduler", "train") if k in config["source"]})


def adapt_config_json(wildcards):
    """The training settings, and the weights and options of the method: adapt.paper's for the paper-settings row,
    adapt.official's (its train block over adapt.train) for the released code's rows (domainstudio.params.arguments.adapt_settings);
    adapt.ant's training overrides and blocks for dpms-ant."""
    train = {**config["adapt"]["train"], "seed": int(wildcards.seed)}
    if wildcards.method in ANT_METHODS:
        ant = config["adapt"]["ant"]
        return json.dumps({"train": {**train, **ant.get("train", {})}, "ant": {k: v for k, v in ant.items() if k != "train"}})
    settings = adapt_settings(config["adapt"], wildcards.method)
    return json.dumps({"train": {**settings["train"], "seed": int(wildcards.seed)}, "weights": settings["weights"],
                       "options": settings["options"]})


def adapt_source_images(wildcards):
    """dpms-ant trains its domain classifier on the source images; the other methods do not read them."""
    return {"source_images": f"data/{wildcards.world}/source"} if wildcards.method in ANT_METHODS else {}


def adapt_source_images_arg(wildcards, input):
    return f"--source-images {input.source_images}" if wildcards.method in ANT_METHODS else ""


def sample_config_json(wildcards):
    """params.yaml's sample block, with adapt.official.sample over it for the released code's rows."""
    return json.dumps({**sample_settings(config, wildcards.method), "seed": int(wildcards.seed)})


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
    return shlex.join(lpips_arguments(config["evaluate"], input.backbone[0] if input.backbone else None))


# -- evaluation (evaluate.smk) -------------------------------------------------------------------------------------

def backbone_training_references(wildcards):
    """The reference sets the embedded metric backbone trains on: evaluate.backbone_train.domains, or every target
    domain of the world."""
    chosen = backbone_domains(wildcards.world, config["evaluate"].get("backbone_train", {}).get("domains"))
    return [f"data/{wildcards.world}/{d}/reference" for d in chosen]


def evaluate_backbone_input(wildcards):
    """The embedded metric backbone, when scoring a run reads it (domainstudio.params.arguments.needs_metric_backbone)."""
    return [f"models/{wildcards.world}/metric_backbone"] if needs_metric_backbone(config["evaluate"], EMBEDDED) else []


def evaluate_args(wildcards, input, output):
    """The evaluate verb's arguments for one run (domainstudio.params.arguments.evaluate_arguments): its metric files go
    to the folder of its intra_lpips.json."""
    run = {**dict(wildcards.items()), "family": method_family(wildcards)}
    return shlex.join(evaluate_arguments(
        config["evaluate"], RESOLUTION, run, samples=input.samples, train=input.train, reference=input.reference,
        reference_stats=input.stats, metric_backbone=input.backbone[0] if input.backbone else None,
        out=os.path.dirname(output.intra_lpips), diversity=EMBEDDED, threads=JOB_THREADS))


def reference_stats_backbone_arg(wildcards, input):
    return f"--embedded-backbone {input.backbone}" if input.backbone else ""


# -- tables and figures (report.smk) -------------------------------------------------------------------------------

def table_run_dirs(wildcards):
    """The metric folders of a table's runs, in the order of table_runs."""
    return " ".join(run_dir(r) for r in table_runs(wildcards.table))


def table_reported_arg(wildcards):
    """Tables 1 and 2 append the literature's rows of their metric (TABLE_REPORTED)."""
    return TABLE_REPORTED.get(wildcards.table, "")


def figures_backbone_args(wildcards, input):
    """The LPIPS backbone of the nearest-training-image figures, with the embedded backbone's folder when it is used."""
    return f"--backbone {LPIPS_BACKBONE}" + (f" --embedded-backbone {input.backbone}" if input.backbone else "")


# -- text-to-image (t2i.smk) ------------------------------------------------------------------------------------

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


def t2i_table_run_dirs(wildcards, input):
    """The run folders of the text-to-image table: those of its intra_lpips.json inputs."""
    return " ".join(os.path.dirname(f) for f in input)


# -- GAN baselines (gan.smk) ------------------------------------------------------------------------------------

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
    return json.dumps(gan_adapt_config(config["gan"], wildcards.method, wildcards.seed))


def ewc_fisher_config_json(wildcards):
    return json.dumps({"ewc": config["gan"]["methods"].get("ewc", {})})


def gan_fisher_input(wildcards):
    """EWC reads the source GAN's Fisher information of its seed, computed once for every domain and K."""
    return {"fisher": EWC_FISHER.format(world=wildcards.world, seed=wildcards.seed)} if wildcards.method == "ewc" else {}


def gan_fisher_arg(wildcards, input):
    return f"--fisher {input.fisher}" if wildcards.method == "ewc" else ""


def gan_sample_batch_size():
    return config["gan"].get("sample", {}).get("batch_size", 500)
